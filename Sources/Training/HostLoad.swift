import Foundation
import MPI

/// Ranks against cores on each host: more ranks than cores (oversubscription) makes every step wait
/// for a descheduled rank (measured on 2 cores: SimpleRNN 2.63 s/epoch at -n 4 against 2.12 s at
/// -n 2), so rank 0 says so once at start. Nothing else changes.
public enum HostLoad {
    /// The cores this process may use on its host: the online CPUs, capped by a cgroup v2 CPU quota.
    /// Not the affinity mask: `mpirun` binds each rank to one core.
    static func cores() -> Int {
        cores(online: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
              cpuMax: try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8))
    }

    /// `online` CPUs capped by a cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD" for none),
    /// the quota rounded up to whole cores; at least 1.
    static func cores(online: Int, cpuMax: String?) -> Int {
        var n = max(1, online)
        if let quota = cpuMax {
            let f = quota.split(whereSeparator: \.isWhitespace)
            if f.count == 2, let q = Double(f[0]), let period = Double(f[1]), period > 0 {
                n = min(n, max(1, Int((q / period).rounded(.up))))
            }
        }
        return n
    }

    /// The note for the most loaded host, or nil when no host has more ranks than cores.
    static func note(ranksOnHost: Int, cores: Int, singleHost: Bool) -> String? {
        guard ranksOnHost > cores else { return nil }
        return singleHost
            ? "note: \(ranksOnHost) ranks on \(cores) core\(cores == 1 ? "" : "s"); -n \(cores) is likely faster"
            : "note: \(ranksOnHost) ranks on a host with \(cores) core\(cores == 1 ? "" : "s"); at most \(cores) per host is likely faster"
    }

    /// Collective: every rank calls it; returns the note (on every rank) or nil.
    public static func note(comm: Communicator) throws -> String? {
        let ranks = try comm.ranksOnThisHost()
        let cores = cores()
        let excess = try comm.allReduce(Int64(ranks - cores), op: .max)
        guard excess > 0 else { return nil }
        // The ranks and cores of a host with that excess (the largest such host).
        let mine = Int64(ranks - cores) == excess
        let worstRanks = try comm.allReduce(Int64(mine ? ranks : 0), op: .max)
        return note(ranksOnHost: Int(worstRanks), cores: Int(worstRanks - excess), singleHost: ranks == comm.size)
    }
}

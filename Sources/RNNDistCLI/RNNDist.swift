import ArgumentParser
import MPI
import RNN
import TextData
import Training
#if canImport(Glibc)
import Foundation
import Glibc
#endif

/// The command tree. Each subcommand lives in its own file; this file only lists them and runs one.
public struct RNNDist: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rnn-dist",
        abstract: "Data-parallel training of recurrent text classifiers (MPI + HDF5): IMDB, or your own labelled text.",
        discussion: """
        Typical use:
          rnn-dist prepare --source aclImdb_v1.tar.gz -o data/imdb.h5
          rnn-dist prepare --source tickets.csv --text-column body --label-column queue -o data/tickets.h5
          mpirun -n 4 rnn-dist train --model lstm
          mpirun -n 4 rnn-dist train --data data/tickets.h5 --model-config model.json
          rnn-dist eval --weights runs/best.weights.h5
        Run without mpirun, every command is a single process (rank 0 of 1).
        """,
        version: "0.1.0",
        subcommands: [Prepare.self, Train.self, Eval.self, Predict.self, ServeCommand.self, Plot.self, Inspect.self, Export.self, SelfTest.self]
    )

    public init() {}

    /// `train`'s stop signals are caught from here on (`Trainer.catchStopSignals`), before the
    /// kernel choice and the command line's parsing: `main` calls this first.
    public static func catchStopSignalsOfTrain() {
        guard catchesStopSignals(CommandLine.arguments) else { return }
        Trainer.catchStopSignals()
        if CommandLine.arguments.contains("--inject-stop-main") { raise(SIGUSR1) }   // train's test hook
    }

    /// Whether the command line runs `train` (its first argument that is not an option), and not
    /// only its help: train's stop signals are caught from `main` on.
    static func catchesStopSignals(_ arguments: [String]) -> Bool {
        let options = arguments.dropFirst().prefix { $0 != "--" }
        return arguments.dropFirst().first { !$0.hasPrefix("-") } == Train._commandName
            && !options.contains { ["-h", "--help", "-help", "--version"].contains($0) }
    }

    /// Parses the arguments, runs the command, and turns any thrown error into one line on stderr
    /// and a non-zero exit (64 for a bad command line, 1 or a command's own status otherwise).
    public static func runMain() -> Never {
        ComputeSetup.configureProcess()
        var command: ParsableCommand
        do {
            try refuseHelpForAnUnknownCommand(Array(CommandLine.arguments.dropFirst()))
            command = try parseAsRoot()
        } catch {
            exitForCommandLine(error)
        }
        // train's and serve's output is a log: a reader that went away (`| head -1`) must not end
        // them (SIGPIPE killed a training run after its first epoch, exit 141, no checkpoint written).
        if command is Train || command is ServeCommand { signal(SIGPIPE, SIG_IGN) }
        do {
            try command.run()
            // predict, inspect, eval (and selftest, for the bench) print their result; the others a log
            // (their results are files).
            if command is Predict || command is Inspect || command is Eval || command is SelfTest { checkStandardOutput() }
            Glibc.exit(0)
        } catch let e as ExitCode {
            Glibc.exit(e.rawValue)
        } catch {
            // Help requests, validation failures and other parser errors: as after parsing.
            if error is ValidationError || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                exitForCommandLine(error)
            }
            failAndExit(error)
        }
    }

    /// Where a text that begins with '-' goes (predict's texts), for the messages below.
    static let dashedTextHint = "if it is a text: a text that begins with '-' goes after '--', or on stdin"

    /// A help request no one made: ArgumentParser reads an argument such as `-foo.h5` as the grouped
    /// short flags -f -o -o -. -h -5, and the -h in it as a request for help — `inspect -foo.h5`
    /// printed the help and exited 0, as if the file were intact (also plot, export), and
    /// `predict --weights W "-the worst"` printed no predictions. The argument
    /// (before any `--`) that did it, when no `-h`, `--help`, `-help` or `help` asked for help; nil
    /// otherwise.
    static func groupedHelp(_ arguments: [String]) -> String? {
        let options = arguments.prefix { $0 != "--" }
        guard arguments.first != "help", !options.contains(where: { ["-h", "--help", "-help"].contains($0) }) else { return nil }
        return options.first {
            guard $0.hasPrefix("-") && !$0.hasPrefix("--") else { return false }
            let name = $0.dropFirst().prefix { $0 != "=" }
            return name.count > 1 && name.contains("h")
        }
    }

    /// `rnn-dist help bogus` printed the top-level help and exited 0 (ArgumentParser's help command
    /// falls back to it), where `rnn-dist bogus` is a bad command line (64).
    static func refuseHelpForAnUnknownCommand(_ arguments: [String]) throws {
        guard arguments.first == "help", let name = arguments.dropFirst().first(where: { !$0.hasPrefix("-") }) else { return }
        let names = configuration.subcommands.map { $0._commandName }
        guard !names.contains(name) && name != "help" else { return }
        throw ValidationError("help: no command named '\(OneLine.flattened(String(name.prefix(40))))' (the commands: \(names.joined(separator: ", ")))")
    }

    /// An ArgumentParser error: a help or version request prints as ArgumentParser prints it (exit
    /// 0); a bad command line is one line — ArgumentParser's message and where the usage is — and
    /// ArgumentParser's exit status (64).
    static func exitForCommandLine(_ error: Error) -> Never {
        if exitCode(for: error) == .success, let a = groupedHelp(Array(CommandLine.arguments.dropFirst())) {
            let name = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") } ?? ""
            let short = [Prepare._commandName, Plot._commandName, Export._commandName].contains(name) ? "-h and -o" : "-h"
            let shown = OneLine.flattened(String(a.prefix(40))) + (a.count > 40 ? "…" : "")
            if name == Predict._commandName { exitForCommandLine(ValidationError("'\(shown)' is not an option of predict; \(dashedTextHint)")) }
            exitForCommandLine(ValidationError("'\(shown)' is not an option "
                + "(nor a group of short flags: \(name.isEmpty ? "rnn-dist" : name)'s are \(short)); a file name that begins with '-' goes after '--', or as ./NAME"))
        }
        let code = exitCode(for: error)
        guard code != .success else { exit(withError: error) }
        let names = configuration.subcommands.map { $0._commandName }
        let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") }.flatMap { names.contains($0) ? $0 : nil }
        // Under mpirun every rank parses the same line: the first rank alone says so.
        let rank = Communicator.launcherRank
        if rank == nil || rank == 0 {
            // predict takes texts: one that begins with '-' reads as an option.
            let hint = command == Predict._commandName && message(for: error).hasPrefix("Unknown option") ? "; " + dashedTextHint : ""
            printError(message(for: error) + hint + " (usage: rnn-dist\(command.map { " " + $0 } ?? "") --help)")
        }
        Glibc.exit(code.rawValue)
    }
}

/// A path given as an empty string is a bad command line (64), as `train`'s are: it read as a missing
/// file named '' (exit 1 or 2, "rnn-dist: error: : missing").
func refuseEmptyPaths(_ paths: [(name: String, path: String?)]) throws {
    for (name, path) in paths where path?.isEmpty == true {
        throw ValidationError("\(name) needs a path, not an empty string")
    }
}

/// Prints `rnn-dist: error: …` (one line) to stderr and exits 1.
func failAndExit(_ error: Error, code: Int32 = 1) -> Never {
    printError("\(error)")
    Glibc.exit(code)
}

/// One line on stderr, prefixed with the tool's name.
func printError(_ message: String) { printNotice("error: " + message) }

/// One line on stderr, prefixed with the tool's name only (`rnn-dist: interrupted by SIGTERM; …`).
func printNotice(_ message: String) {
    let line = "rnn-dist: " + message.replacingOccurrences(of: "\n", with: " ") + "\n"
    line.utf8CString.withUnsafeBufferPointer { p in
        _ = write(2, p.baseAddress, p.count - 1)
    }
}

/// A failure the CLI reports as-is.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}


import Foundation

/// The book's two figures as one SVG: training and validation accuracy, and training and validation
/// loss, per epoch (training as dots, validation as a line, as in chapter 6).
public enum HistoryPlot {
    struct Series { let name: String; let values: [Double]; let dots: Bool; let color: String }

    public static func svg(_ history: History, title: String) -> String {
        let epochs = history.records.map { Double($0.epoch) }
        let width = 1000.0, height = 440.0
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="20" text-anchor="middle" font-size="16">\(escape(title))</text>

        """
        // A run without validation rows (--validation-split 0) records NaN: no validation series,
        // nor a legend entry for one.
        let validated = history.records.contains { !$0.valAcc.isNaN || !$0.valLoss.isNaN }
        out += chart(x: 60, y: 70, w: 400, h: 310, epochs: epochs, heading: validated ? "Training and validation accuracy" : "Training accuracy",
                     yLabel: "accuracy", series: [
                        Series(name: "Training acc", values: history.records.map(\.acc), dots: true, color: "#1f5fbf")]
                        + (validated ? [Series(name: "Validation acc", values: history.records.map(\.valAcc), dots: false, color: "#1f5fbf")] : []))
        out += chart(x: 560, y: 70, w: 400, h: 310, epochs: epochs, heading: validated ? "Training and validation loss" : "Training loss",
                     yLabel: "loss", series: [
                        Series(name: "Training loss", values: history.records.map(\.loss), dots: true, color: "#c0392b")]
                        + (validated ? [Series(name: "Validation loss", values: history.records.map(\.valLoss), dots: false, color: "#c0392b")] : []))
        out += "</svg>\n"
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// "Nice" tick values covering lo…hi.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let span = max(hi - lo, 1e-9)
        let raw = span / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = []
        let first = (lo / step).rounded(.down)
        // Counted, not accumulated: with huge values t += step may not move t at all.
        for k in 0 ... 2 * count + 2 {
            let t = (first + Double(k)) * step
            if t > hi + step * 1e-9 { break }
            if t >= lo - step * 1e-9 { out.append(t) }
        }
        return out
    }

    /// The labels of `ticks`' values: as many significant digits as their step needs (0.69225,
    /// 0.6925, 0.69275 where three digits showed 0.692, 0.693, 0.693), at least three.
    static func tickLabels(_ ticks: [Double]) -> [String] {
        let step = ticks.count > 1 ? (ticks[ticks.count - 1] - ticks[0]) / Double(ticks.count - 1) : 0
        let largest = ticks.map { abs($0) }.max() ?? 0
        // One tick, or ticks a step apart that no Double tells apart (a loss of 1e15 padded by ±0.05).
        guard step > 0, step.isFinite, largest.isFinite else { return ticks.map { String(format: "%.3g", $0) } }
        // The step's last significant digit (2.5 × 10^k has two), and the largest value's first;
        // at least the integer digits, so that %g writes 1240, not 1.24e+03 (up to 10^17).
        let stepDigit = floor(log10(step) + 1e-9), mantissa = step / pow(10, stepDigit)
        let last = abs(mantissa.rounded() - mantissa) > 1e-6 ? stepDigit - 1 : stepDigit
        let first = largest < step ? stepDigit : floor(log10(largest) + 1e-9)
        let digits = max(Int(first - last) + 1, Int(first) + 1, 3)
        return ticks.map { String(format: "%.\(min(digits, 17))g", abs($0) < step * 1e-6 ? 0 : $0) }
    }

    /// Whether a value is drawn: finite, and small enough that the axis's span and padding stay
    /// finite (a loss that large is +∞ in rnn-dist's own sums; only an edited file holds one).
    static func drawn(_ v: Double) -> Bool { v.isFinite && abs(v) <= 1e300 }

    static func chart(x: Double, y: Double, w: Double, h: Double, epochs: [Double], heading: String,
                      yLabel: String, series: [Series]) -> String {
        let finite = series.flatMap(\.values).filter(drawn)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi - lo < 1e-6 { lo -= 0.05; hi += 0.05 }
        let pad = (hi - lo) * 0.08
        lo -= pad; hi += pad
        // The epochs recorded, and the axis's span: one epoch sits in the middle of a span of one.
        let first = epochs.first ?? 1, last = max(epochs.last ?? 1, first)
        let e0 = last > first ? first : first - 0.5, e1 = last > first ? last : first + 0.5
        func px(_ e: Double) -> Double { x + (e - e0) / (e1 - e0) * w }
        func py(_ v: Double) -> Double { y + h - (v - lo) / (hi - lo) * h }
        var s = "<g class=\"chart\" data-title=\"\(escape(heading))\">\n"
        s += "<text x=\"\(fmt(x + w / 2))\" y=\"\(fmt(y - 24))\" text-anchor=\"middle\" font-size=\"14\">\(escape(heading))</text>\n"
        s += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"\(fmt(h))\" fill=\"none\" stroke=\"#444\"/>\n"
        let yTicks = ticks(lo, hi)
        for (t, label) in zip(yTicks, tickLabels(yTicks)) {
            s += "<line x1=\"\(fmt(x - 4))\" y1=\"\(fmt(py(t)))\" x2=\"\(fmt(x + w))\" y2=\"\(fmt(py(t)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(fmt(x - 7))\" y=\"\(fmt(py(t) + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        let step = max(1, Int((last - first) / 10))
        for e in stride(from: Int(first), through: Int(last), by: step) {
            s += "<line x1=\"\(fmt(px(Double(e))))\" y1=\"\(fmt(y + h))\" x2=\"\(fmt(px(Double(e))))\" y2=\"\(fmt(y + h + 4))\" stroke=\"#444\"/>"
            s += "<text x=\"\(fmt(px(Double(e))))\" y=\"\(fmt(y + h + 17))\" text-anchor=\"middle\">\(e)</text>\n"
        }
        s += "<text x=\"\(fmt(x + w / 2))\" y=\"\(fmt(y + h + 34))\" text-anchor=\"middle\">epoch</text>\n"
        s += "<text transform=\"translate(\(fmt(x - 45)),\(fmt(y + h / 2))) rotate(-90)\" text-anchor=\"middle\">\(yLabel)</text>\n"
        for (k, ser) in series.enumerated() {
            let pts = zip(epochs, ser.values).filter { drawn($0.1) }
            s += "<g class=\"series\" data-name=\"\(escape(ser.name))\" data-points=\"\(pts.count)\">\n"
            if ser.dots {
                for (e, v) in pts { s += "<circle cx=\"\(fmt(px(e)))\" cy=\"\(fmt(py(v)))\" r=\"3.5\" fill=\"\(ser.color)\"/>\n" }
            } else {
                // A line through each run of epochs with a value: an epoch without one (NaN, ±∞)
                // leaves a gap, never a straight line across it.
                var runs: [[(Double, Double)]] = []
                var previous = -1
                for (i, v) in ser.values.enumerated() where drawn(v) {
                    if i == previous + 1, !runs.isEmpty { runs[runs.count - 1].append((epochs[i], v)) } else { runs.append([(epochs[i], v)]) }
                    previous = i
                }
                for run in runs {
                    let d = run.map { "\(fmt(px($0.0))),\(fmt(py($0.1)))" }.joined(separator: " ")
                    s += "<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"2\"/>\n"
                    if run.count == 1 {    // a line of one point draws nothing: a ring marks it
                        s += "<circle cx=\"\(fmt(px(run[0].0)))\" cy=\"\(fmt(py(run[0].1)))\" r=\"4\" fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"2\"/>\n"
                    }
                }
            }
            s += "</g>\n"
            // Legend in one row between the heading and the frame, clear of the data.
            let ly = y - 6, lx = x + w / 2 - 150 + Double(k) * 160
            if ser.dots {
                s += "<circle cx=\"\(fmt(lx + 10))\" cy=\"\(fmt(ly - 4))\" r=\"3.5\" fill=\"\(ser.color)\"/>"
            } else {
                s += "<line x1=\"\(fmt(lx))\" y1=\"\(fmt(ly - 4))\" x2=\"\(fmt(lx + 20))\" y2=\"\(fmt(ly - 4))\" stroke=\"\(ser.color)\" stroke-width=\"2\"/>"
            }
            s += "<text x=\"\(fmt(lx + 26))\" y=\"\(fmt(ly))\">\(escape(ser.name))</text>\n"
        }
        s += "</g>\n"
        return s
    }
}

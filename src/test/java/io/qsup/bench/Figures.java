package io.qsup.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;

/** The samples of one benchmark run, by figure, in the order they were first taken; not thread-safe. */
final class Figures {
    private final Map<String, List<Double>> samples = new LinkedHashMap<>();
    private final List<String> raw = new ArrayList<>();

    private final List<String> failures = new ArrayList<>();

    /** A sample; NaN (a ratio with a failed side) is left out. */
    void add(String figure, int iteration, double value) {
        if (Double.isNaN(value)) {
            return;
        }
        samples.computeIfAbsent(figure, k -> new ArrayList<>()).add(value);
        raw.add(String.format(Locale.ROOT, "%s\t%d\t%.4f", figure, iteration, value));
    }

    /** A command that failed in an iteration, so that its sample is missing. */
    void failure(String figure, int iteration, String message) {
        failures.add(String.format(Locale.ROOT, "iteration %d, %s: %s", iteration, figure, message));
        System.err.println("bench: " + failures.get(failures.size() - 1));
    }

    /** The failures, as a Markdown list, or an empty string. */
    String failures() {
        StringBuilder sb = new StringBuilder();
        failures.forEach(f -> sb.append("- ").append(f.replace("|", "\\|")).append('\n'));
        return sb.toString();
    }

    /** The median of a figure's samples, if it has any. */
    OptionalDouble median(String figure) {
        List<Double> xs = sorted(figure);
        return xs.isEmpty() ? OptionalDouble.empty() : OptionalDouble.of(median(xs));
    }

    /** A figure's samples, sorted; empty if it has none. */
    List<Double> sorted(String figure) {
        List<Double> s = new ArrayList<>(samples.getOrDefault(figure, List.of()));
        Collections.sort(s);
        return s;
    }

    /** A figure no run could measure: the smoke test fails on it. */
    List<String> missing(List<String> expected) {
        return expected.stream().filter(f -> !samples.containsKey(f) || samples.get(f).isEmpty()).toList();
    }

    String table() {
        StringBuilder sb = new StringBuilder("| figure | median | min | max | n |\n|---|---|---|---|---|\n");
        samples.forEach((f, xs) -> {
            List<Double> s = new ArrayList<>(xs);
            Collections.sort(s);
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %d |%n", f, num(median(s)), num(s.get(0)),
                    num(s.get(s.size() - 1)), s.size()));
        });
        return sb.toString();
    }

    void writeRaw(Path file) throws IOException {
        Files.writeString(file, "figure\titeration\tvalue\n" + String.join("\n", raw) + "\n");
    }

    static String num(double v) {
        return String.format(Locale.ROOT, Math.abs(v) >= 100 ? "%.0f" : Math.abs(v) >= 10 ? "%.1f" : "%.3f", v);
    }

    static double median(List<Double> sorted) {
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }
}

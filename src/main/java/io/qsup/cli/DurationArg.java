package io.qsup.cli;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/** Parses durations written on the command line: {@code 500ms}, {@code 30s}, {@code 2m}, {@code 1h}, or plain seconds. */
final class DurationArg {
    private static final Pattern FORM = Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)?");

    private DurationArg() {}

    static double seconds(CommandSpec spec, String option, String text) {
        Matcher m = FORM.matcher(text.trim());
        if (!m.matches()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "invalid duration for " + option + ": '" + text + "'; write e.g. 500ms, 30s, 2m or 1h");
        }
        double n = Double.parseDouble(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        return switch (unit) {
            case "ms" -> n / 1000.0;
            case "m" -> n * 60;
            case "h" -> n * 3600;
            default -> n;
        };
    }
}

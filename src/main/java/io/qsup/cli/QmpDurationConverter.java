package io.qsup.cli;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/** Reads {@code --timeout} values: plain seconds ({@code 5}, {@code 0.5}) or with a unit ({@code 500ms}, {@code 2m}). */
final class QmpDurationConverter implements CommandLine.ITypeConverter<Duration> {
    private static final Pattern FORM = Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)?");

    @Override
    public Duration convert(String value) {
        Matcher m = FORM.matcher(value.strip());
        if (!m.matches()) {
            throw new CommandLine.TypeConversionException("'" + value
                    + "' is not a duration; write seconds like 5 or 0.5, or 500ms, 5s, 2m, 1h");
        }
        BigDecimal n = new BigDecimal(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        BigDecimal millis = switch (unit) {
            case "ms" -> n;
            case "m" -> n.multiply(BigDecimal.valueOf(60_000));
            case "h" -> n.multiply(BigDecimal.valueOf(3_600_000));
            default -> n.multiply(BigDecimal.valueOf(1000));
        };
        Duration d = Duration.ofMillis(millis.longValue());
        if (d.isZero()) {
            throw new CommandLine.TypeConversionException("'" + value + "' is too short; give at least 1ms");
        }
        return d;
    }
}

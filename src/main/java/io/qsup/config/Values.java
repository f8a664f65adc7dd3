package io.qsup.config;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Converts YAML values to typed values, reporting a wrong type or unit with what was expected; every method
 * returns null after reporting, so the caller keeps going and one pass finds every problem.
 */
final class Values {
    private static final Pattern SIZE = Pattern.compile("(\\d{1,19})\\s*([KMGTkmgt])?(i?B)?");
    private static final Pattern DURATION = Pattern.compile("(\\d{1,12})\\s*(ms|s|m|h|d)");

    private Values() {}

    /** Any scalar but null as text; numbers are accepted as their text. Control characters are refused. */
    static String string(YamlNode.Entry e, String keyPath, Problems p) {
        return string(e.value(), keyPath, p, false);
    }

    static String string(YamlNode node, String keyPath, Problems p, boolean allowNewlines) {
        if (!(node instanceof YamlNode.Scalar s) || s.kind() == YamlNode.Scalar.Kind.NULL) {
            p.error(node.location(), keyPath, "expected a text value, got " + node.describe());
            return null;
        }
        String text = s.text();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean allowed = allowNewlines && (c == '\n' || c == '\t');
            if ((c < 0x20 || c == 0x7f) && !allowed) {
                p.error(node.location(), keyPath, "contains a control character (code " + (int) c + "); remove it");
                return null;
            }
        }
        return text;
    }

    /** A text value that must match {@code pattern}; {@code rule} says in words what is allowed. */
    static String matching(YamlNode.Entry e, String keyPath, Problems p, Pattern pattern, String rule) {
        String s = string(e, keyPath, p);
        if (s == null) {
            return null;
        }
        if (!pattern.matcher(s).matches()) {
            p.error(e.value().location(), keyPath, "'" + printable(s) + "' is not allowed: " + rule);
            return null;
        }
        return s;
    }

    static Boolean bool(YamlNode.Entry e, String keyPath, Problems p) {
        if (e.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.BOOLEAN) {
            return Boolean.parseBoolean(s.text());
        }
        p.error(e.value().location(), keyPath, "expected true or false, got " + e.value().describe());
        return null;
    }

    static Integer integer(YamlNode.Entry e, String keyPath, Problems p, int min, int max) {
        if (e.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.INTEGER) {
            try {
                long v = Long.parseLong(s.text().replace("_", "").trim());
                if (v >= min && v <= max) {
                    return (int) v;
                }
            } catch (NumberFormatException ignored) {
                // hex, octal or huge: fall through to the range message
            }
            p.error(s.location(), keyPath, "must be a whole number from " + min + " to " + max + ", got " + s.text());
            return null;
        }
        p.error(e.value().location(), keyPath, "expected a whole number, got " + e.value().describe());
        return null;
    }

    /** A size such as {@code 512M} or {@code 2G} (binary units; {@code MiB} and {@code MB} mean the same). */
    static Long size(YamlNode.Entry e, String keyPath, Problems p) {
        YamlNode v = e.value();
        if (v instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.INTEGER) {
            p.error(v.location(), keyPath, "a size needs a unit: write " + s.text() + "M or " + s.text() + "G");
            return null;
        }
        if (v instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.STRING) {
            Matcher m = SIZE.matcher(s.text().trim());
            if (m.matches() && m.group(2) != null) {
                try {
                    long n = Long.parseLong(m.group(1));
                    int shift = switch (Character.toUpperCase(m.group(2).charAt(0))) {
                        case 'K' -> 10;
                        case 'M' -> 20;
                        case 'G' -> 30;
                        default -> 40;
                    };
                    if (n > (Long.MAX_VALUE >> shift)) {
                        throw new ArithmeticException("overflow");
                    }
                    return n << shift;
                } catch (NumberFormatException | ArithmeticException ex) {
                    p.error(v.location(), keyPath, "size '" + printable(s.text()) + "' is too large");
                    return null;
                }
            }
        }
        p.error(v.location(), keyPath, "expected a size such as 512M or 2G, got " + printableDescribe(v));
        return null;
    }

    /** A duration such as {@code 500ms}, {@code 5s}, {@code 2m}, {@code 1h} or {@code 1d}. */
    static Duration duration(YamlNode.Entry e, String keyPath, Problems p) {
        YamlNode v = e.value();
        if (v instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.INTEGER) {
            p.error(v.location(), keyPath, "a duration needs a unit: write " + s.text() + "s or " + s.text() + "ms");
            return null;
        }
        if (v instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.STRING) {
            Matcher m = DURATION.matcher(s.text().trim());
            if (m.matches()) {
                long n = Long.parseLong(m.group(1));
                return switch (m.group(2)) {
                    case "ms" -> Duration.ofMillis(n);
                    case "s" -> Duration.ofSeconds(n);
                    case "m" -> Duration.ofMinutes(n);
                    case "h" -> Duration.ofHours(n);
                    default -> Duration.ofDays(n);
                };
            }
        }
        p.error(v.location(), keyPath, "expected a duration such as 500ms, 5s, 2m or 1h, got " + printableDescribe(v));
        return null;
    }

    /** One of a fixed set of words, matched exactly; the error lists the choices and suggests the closest. */
    static <E> E choice(YamlNode.Entry e, String keyPath, Problems p, Map<String, E> choices) {
        YamlNode v = e.value();
        if (v instanceof YamlNode.Scalar s && s.kind() != YamlNode.Scalar.Kind.NULL) {
            E found = choices.get(s.text());
            if (found != null) {
                return found;
            }
            String hint = Suggestions.closest(s.text(), choices.keySet());
            p.error(v.location(), keyPath, "'" + printable(s.text()) + "' is not one of "
                    + String.join(", ", choices.keySet()) + (hint != null ? "; did you mean '" + hint + "'?" : ""));
            return null;
        }
        p.error(v.location(), keyPath, "expected one of " + String.join(", ", choices.keySet()) + ", got " + v.describe());
        return null;
    }

    /** The YAML words of an enum's constants: lower case, {@code _} written as {@code -}. */
    static <E extends Enum<E>> Map<String, E> words(Class<E> type) {
        return words(type, c -> c.name().toLowerCase(Locale.ROOT).replace('_', '-'));
    }

    static <E extends Enum<E>> Map<String, E> words(Class<E> type, Function<E, String> word) {
        Map<String, E> m = new LinkedHashMap<>();
        for (E c : type.getEnumConstants()) {
            m.put(word.apply(c), c);
        }
        return m;
    }

    /** A file path; a relative path resolves against {@code base}, the folder of the file it was written in. */
    static Path path(YamlNode.Entry e, String keyPath, Problems p, Path base) {
        String s = string(e, keyPath, p);
        if (s == null) {
            return null;
        }
        if (s.isBlank()) {
            p.error(e.value().location(), keyPath, "is empty; give a file path");
            return null;
        }
        try {
            Path path = Path.of(s);
            return (path.isAbsolute() || base == null ? path : base.resolve(path)).normalize();
        } catch (InvalidPathException ex) {
            p.error(e.value().location(), keyPath, "'" + printable(s) + "' is not a valid path: " + ex.getReason());
            return null;
        }
    }

    /** Shows a user's text in a one-line message: control characters as {@code \\uXXXX}, long text cut. */
    static String printable(String s) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length() && sb.length() < 80; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        if (sb.length() >= 80) {
            sb.append("...");
        }
        return sb.toString();
    }

    private static String printableDescribe(YamlNode v) {
        if (v instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.STRING) {
            return "'" + printable(s.text()) + "'";
        }
        return v.describe();
    }
}

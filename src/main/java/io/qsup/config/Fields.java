package io.qsup.config;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The keys of one YAML mapping as a validator consumes them: reports duplicate keys at once and, in
 * {@link #finish()}, every key nobody asked for, with a "did you mean" hint from the known keys.
 */
final class Fields {
    private final YamlNode.Mapping map;
    private final String path;
    private final Problems problems;
    private final List<String> known;
    private final Map<String, YamlNode.Entry> byKey = new HashMap<>();

    Fields(YamlNode.Mapping map, String path, Problems problems, List<String> known) {
        this.map = map;
        this.path = path;
        this.problems = problems;
        this.known = known;
        for (YamlNode.Entry e : map.entries()) {
            YamlNode.Entry first = byKey.putIfAbsent(e.key(), e);
            if (first != null) {
                problems.error(
                        e.keyLocation(),
                        keyPath(e.key()),
                        "given twice (first on line " + first.keyLocation().line() + "); keep only one");
            }
        }
    }

    /** The mapping itself. */
    YamlNode.Mapping mapping() {
        return map;
    }

    /** The key path of this mapping, such as {@code disks[1]}; empty at the top level. */
    String path() {
        return path;
    }

    /** The full key path of {@code key} in this mapping. */
    String keyPath(String key) {
        String shown = Values.printable(key);
        return path.isEmpty() ? shown : path + "." + shown;
    }

    /** The entry for {@code key}, or null when the key is absent; a key given as {@code key:} with no value counts as absent. */
    YamlNode.Entry get(String key) {
        YamlNode.Entry e = byKey.get(key);
        if (e == null) {
            return null;
        }
        if (e.value() instanceof YamlNode.Scalar s && s.kind() == YamlNode.Scalar.Kind.NULL) {
            return null;
        }
        return e;
    }

    /** Where a missing key should be reported: at the mapping itself. */
    YamlNode.Location location() {
        return map.location();
    }

    /** Reports every key that is not a known key. */
    void finish() {
        Set<String> reported = new HashSet<>();
        for (YamlNode.Entry e : map.entries()) {
            if (known.contains(e.key()) || !reported.add(e.key())) {
                continue;
            }
            problems.error(e.keyLocation(), keyPath(e.key()), () -> {
                String hint = Suggestions.closest(e.key(), known);
                return hint != null
                        ? "unknown key; did you mean '" + hint + "'?"
                        : "unknown key; known keys here: " + String.join(", ", known);
            });
        }
    }
}

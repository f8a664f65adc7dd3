package io.qsup.config;

import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Compares two definitions of the same VM by YAML key, for a reload: which keys changed, and whether those
 * changes only take effect when QEMU is restarted (anything on the command line) or apply at once (supervision).
 */
public final class DefinitionChanges {
    private static final Map<String, String> KEY_OF_COMPONENT = Map.of(
            "memoryBytes", "memory",
            "cpuModel", "cpu");
    /** Keys read by the supervisor only; changing them never needs a QEMU restart. */
    private static final Set<String> LIVE = Set.of("description", "autostart", "depends-on", "restart", "restart-delay",
            "restart-max-delay", "restart-steps", "start-limit-burst", "start-limit-interval", "stop-timeout",
            "hang-action", "guest-hang-action", "guest-hang-after", "ready-when", "ready-timeout",
            "apply-changes");

    private DefinitionChanges() {}

    /** The YAML keys whose values differ between {@code before} and {@code after}, in definition order. */
    public static List<String> changedKeys(VmDefinition before, VmDefinition after) {
        List<String> changed = new ArrayList<>();
        for (RecordComponent c : VmDefinition.class.getRecordComponents()) {
            if (c.getName().equals("sourceFile")) {
                continue;
            }
            try {
                Object a = c.getAccessor().invoke(before);
                Object b = c.getAccessor().invoke(after);
                if (!Objects.equals(a, b)) {
                    changed.add(keyOf(c.getName()));
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("record accessors are public", e);
            }
        }
        return changed;
    }

    /** Whether a change of {@code key} only takes effect after QEMU restarts. */
    public static boolean needsRestart(String key) {
        return !LIVE.contains(key);
    }

    private static String keyOf(String component) {
        String mapped = KEY_OF_COMPONENT.get(component);
        if (mapped != null) {
            return mapped;
        }
        StringBuilder sb = new StringBuilder();
        for (char ch : component.toCharArray()) {
            if (Character.isUpperCase(ch)) {
                sb.append('-').append(Character.toLowerCase(ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.toString();
    }
}

package io.qsup.supervisor;

import io.qsup.config.VmDefinition;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** The definition keys (kebab-case, as written in the YAML) that differ between two versions of a VM. */
final class DefinitionDiff {
    private DefinitionDiff() {}

    static List<String> changedKeys(VmDefinition a, VmDefinition b) {
        List<String> keys = new ArrayList<>();
        for (RecordComponent c : VmDefinition.class.getRecordComponents()) {
            if (c.getName().equals("sourceFile")) {
                continue;
            }
            try {
                Object x = c.getAccessor().invoke(a);
                Object y = c.getAccessor().invoke(b);
                if (!Objects.equals(x, y)) {
                    keys.add(keyName(c.getName()));
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read " + c.getName() + " of a VM definition", e);
            }
        }
        return keys;
    }

    /** memoryBytes -> memory, restartMaxDelay -> restart-max-delay. */
    static String keyName(String component) {
        String c = component.equals("memoryBytes") ? "memory" : component;
        StringBuilder sb = new StringBuilder();
        for (char ch : c.toCharArray()) {
            if (Character.isUpperCase(ch)) {
                sb.append('-').append(Character.toLowerCase(ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.toString();
    }
}

package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.vm.Cause;
import io.qsup.vm.ExitCause;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The closed set of causes is documented exactly as the code has it, and every exit kind has its word in it. */
class CausesDocTest {
    private static final Pattern ROW = Pattern.compile("^\\| `([a-z-]+)` \\| (.+) \\|$", Pattern.MULTILINE);

    @Test
    void theDocsCausesTableIsTheEnum() throws Exception {
        String doc = Files.readString(Path.of(System.getProperty("qsup.projectDir", "."), "docs/control-protocol.md"));
        int at = doc.indexOf("<!-- causes:");
        assertThat(at).as("docs/control-protocol.md has the causes table").isPositive();
        String table = doc.substring(at, doc.indexOf("\n\n", doc.indexOf("|---|", at)));
        Matcher m = ROW.matcher(table);
        StringBuilder documented = new StringBuilder();
        while (m.find()) {
            documented.append(m.group(1)).append(" = ").append(m.group(2)).append('\n');
        }
        StringBuilder code = new StringBuilder();
        for (Cause c : Cause.values()) {
            code.append(c.label()).append(" = ").append(c.meaning()).append('\n');
        }
        assertThat(documented.toString()).isEqualTo(code.toString());
    }

    @Test
    void everyExitKindIsACause() {
        List<String> causes = Arrays.stream(Cause.values()).map(Cause::label).toList();
        for (ExitCause.Kind k : ExitCause.Kind.values()) {
            assertThat(causes).contains(k.label());
            assertThat(Cause.of(k).label()).isEqualTo(k.label());
        }
    }
}

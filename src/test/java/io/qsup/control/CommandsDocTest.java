package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * docs/control-protocol.md's command tables are generated from {@link CommandTable}: this test fails when they differ.
 * Run it with {@code -Dqsup.writeDocs=true} to write the generated tables into the docs instead.
 */
class CommandsDocTest {
    static final String BEGIN = "<!-- commands: generated from io.qsup.control.CommandTable by CommandsDocTest, which"
            + " fails when they differ; run it with -Dqsup.writeDocs=true to rewrite them -->\n";
    static final String END = "<!-- end of generated commands -->\n";

    @Test
    void theDocsCommandTablesAreTheCommandTable() throws Exception {
        Path docs = Path.of(System.getProperty("qsup.projectDir", "."), "docs/control-protocol.md");
        String doc = Files.readString(docs, StandardCharsets.UTF_8);
        int begin = doc.indexOf(BEGIN);
        int end = doc.indexOf(END);
        assertThat(begin).as("docs/control-protocol.md has the line %s", BEGIN.strip()).isNotNegative();
        assertThat(end).as("docs/control-protocol.md has the line %s", END.strip()).isGreaterThan(begin);
        String documented = doc.substring(begin + BEGIN.length(), end);
        String generated = markdown();
        if (Boolean.getBoolean("qsup.writeDocs")) {
            Files.writeString(docs, doc.substring(0, begin + BEGIN.length()) + generated + doc.substring(end),
                    StandardCharsets.UTF_8);
            documented = generated;
        }
        assertThat(documented).as("docs/control-protocol.md; run CommandsDocTest with -Dqsup.writeDocs=true")
                .isEqualTo(generated);
    }

    @Test
    void everyArgumentIsDescribedAndEveryCommandReturnsSomething() {
        for (CommandSpec c : CommandTable.all()) {
            assertThat(c.description()).as(c.name()).isNotBlank().doesNotEndWith(".");
            assertThat(c.returns()).as(c.name()).isNotBlank();
            for (ArgumentSpec a : c.arguments()) {
                assertThat(a.description()).as(c.name() + " " + a.name()).isNotBlank().doesNotEndWith(".");
            }
        }
    }

    /** The two tables: one row per command, then one row per argument. */
    static String markdown() {
        StringBuilder md = new StringBuilder();
        md.append("| command | what it does | arguments | returns |\n|---|---|---|---|\n");
        for (CommandSpec c : CommandTable.all()) {
            String args = c.arguments().isEmpty() ? "—"
                    : c.arguments().stream().map(a -> "`" + a.name() + "`").collect(Collectors.joining(", "));
            md.append("| `").append(c.name()).append("` | ").append(c.description()).append(" | ").append(args)
                    .append(" | ").append(c.returns()).append(" |\n");
        }
        md.append("\nThe arguments, checked as described under Errors:\n\n");
        md.append("| command | argument | type | required or default | meaning |\n|---|---|---|---|---|\n");
        for (CommandSpec c : CommandTable.all()) {
            for (ArgumentSpec a : c.arguments()) {
                String need = a.required() ? "required"
                        : a.defaultValue() != null ? "default `" + a.defaultValue() + "`" : "optional";
                String meaning = a.description() + (a.values().isEmpty() ? ""
                        : "; values: " + a.values().stream().map(v -> "`" + v + "`").collect(Collectors.joining(", ")));
                md.append("| `").append(c.name()).append("` | `").append(a.name()).append("` | ")
                        .append(a.type().docName()).append(" | ").append(need).append(" | ").append(meaning)
                        .append(" |\n");
            }
        }
        return md.append('\n').toString();
    }
}

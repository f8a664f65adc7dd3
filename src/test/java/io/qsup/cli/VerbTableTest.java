package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The verb table that a run looks its verb up in is the list of verbs in {@link QsupMain}'s annotation, which the
 * help, the completion and the man pages are made from: a verb added to one and not the other fails here.
 */
class VerbTableTest {
    @Test
    void theVerbTableIsTheAnnotationsListOfVerbs() {
        Map<String, Class<?>> annotated = new LinkedHashMap<>();
        for (Class<?> v : QsupMain.class.getAnnotation(Command.class).subcommands()) {
            if (v != CommandLine.HelpCommand.class) {
                Command c = v.getAnnotation(Command.class);
                assertThat(c.aliases()).as(c.name() + " has aliases, which the table does not know").isEmpty();
                annotated.put(c.name(), v);
            }
        }
        assertThat(QsupMain.VERBS).containsExactlyInAnyOrderEntriesOf(annotated);
    }

    @Test
    void eachVerbIsFoundAfterTheGlobalOptionsAndBuildsOnlyItself() {
        for (String verb : QsupMain.VERBS.keySet()) {
            assertThat(QsupMain.verbOf("--json", "--socket", "/x", verb, "--socket", "/y")).isEqualTo(verb);
            assertThat(QsupMain.verbOf("--socket=/x", verb)).isEqualTo(verb);
            assertThat(QsupMain.commandLineFor(verb).getSubcommands()).containsOnlyKeys(verb);
        }
        assertThat(QsupMain.verbOf("help", "list")).isNull();
        assertThat(QsupMain.verbOf("lsit")).isNull();
        assertThat(QsupMain.verbOf("--socket")).isNull();
        assertThat(QsupMain.commandLineFor("lsit").getSubcommands()).containsKeys("help", "list", "status");
    }
}

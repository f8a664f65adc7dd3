package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;
import picocli.CommandLine;
import picocli.CommandLine.ParseResult;

/** Whatever command line {@link QsupdMain#plainForm} takes, picocli parses to the same daemon settings. */
class QsupdPlainFormTest {
    @Property(tries = 3000)
    void whatThePlainFormTakesPicocliParsesAlike(@ForAll("argvs") List<String> argv) {
        String[] args = argv.toArray(String[]::new);
        QsupdMain plain = QsupdMain.plainForm(args);
        Statistics.collect(plain == null ? "declined" : "taken");
        if (plain == null) {
            return;
        }
        QsupdMain parsed = new QsupdMain();
        ParseResult r = new CommandLine(parsed).parseArgs(args);
        assertThat(r.isUsageHelpRequested() || r.isVersionHelpRequested()).as(argv.toString()).isFalse();
        assertThat(plain.config).as(argv.toString()).isEqualTo(parsed.config);
        assertThat(plain.hookTimeoutSeconds).as(argv.toString()).isEqualTo(parsed.hookTimeoutSeconds);
        assertThat(plain.hook).as(argv.toString()).isEqualTo(parsed.hook).isNull();
        assertThat(plain.reload || parsed.reload || plain.shutdownAll || parsed.shutdownAll).as(argv.toString())
                .isFalse();
    }

    @Example
    void theUnitsFormsAreTakenAndTheRestDeclined() {
        assertThat(QsupdMain.plainForm("--config", "/etc/qsup/qsupd.yaml").config)
                .isEqualTo(Path.of("/etc/qsup/qsupd.yaml"));
        assertThat(QsupdMain.plainForm("-c", "q.yaml").config).isEqualTo(Path.of("q.yaml"));
        assertThat(QsupdMain.plainForm("--config=q.yaml").config).isEqualTo(Path.of("q.yaml"));
        assertThat(QsupdMain.plainForm().config).isNull();
        for (List<String> declined : List.of(List.of("--config", "q.yaml", "--reload"), List.of("--shutdown-all"),
                List.of("--version"), List.of("--help"), List.of("--config"), List.of("--config", "-x"),
                List.of("--config", "@args"), List.of("@args"), List.of("-cq.yaml"), List.of("--config="),
                List.of("--config", "a\u0000b"), List.of("--hook", "/bin/true"), List.of("q.yaml"))) {
            assertThat(QsupdMain.plainForm(declined.toArray(String[]::new))).as(declined.toString()).isNull();
        }
    }

    @Provide
    Arbitrary<List<String>> argvs() {
        return Arbitraries.of("--config", "-c", "--config=/etc/q.yaml", "--config=", "q.yaml", "/etc/q.yaml", "-x",
                "--reload", "--shutdown-all", "--hook", "/bin/true", "--hook-timeout", "5", "--version", "-V",
                "--help", "-h", "@f", "--", "", "-cq.yaml").list().ofMaxSize(3);
    }
}

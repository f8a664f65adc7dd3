package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;
import picocli.CommandLine;
import picocli.CommandLine.ParseResult;

/**
 * Whatever command line {@link FastVerbs} takes, picocli parses to the same verb with the same values, global options
 * applied as {@link QsupMain} applies them; everything else is left to picocli.
 */
class FastVerbsTest {
    @Property(tries = 4000)
    void whatTheFastPathTakesPicocliParsesAlike(@ForAll("argvs") List<String> argv) {
        String[] args = argv.toArray(String[]::new);
        FastVerbs.Parsed fast = FastVerbs.parse(args);
        Statistics.collect(fast == null ? "declined" : "taken: " + fast.verb());
        if (fast == null) {
            return;
        }
        CommandLine cl = QsupMain.commandLineFor(args);
        ParseResult parsed = cl.parseArgs(args);
        QsupMain.applyGlobalOptions(parsed);
        assertThat(parsed.isUsageHelpRequested() || parsed.isVersionHelpRequested()).as(argv.toString()).isFalse();
        ParseResult verb = parsed.subcommand();
        assertThat(verb).as(argv.toString()).isNotNull();
        assertThat(verb.isUsageHelpRequested() || verb.isVersionHelpRequested()).as(argv.toString()).isFalse();
        assertThat(verb.commandSpec().name()).as(argv.toString()).isEqualTo(fast.verb());
        Object command = verb.commandSpec().userObject();
        if (command instanceof ListCommand list) {
            assertThat(list.daemon.socket).as(argv.toString()).isEqualTo(fast.socket());
            assertThat(list.output.json).as(argv.toString()).isEqualTo(fast.json());
            assertThat(list.namesOnly).as(argv.toString()).isEqualTo(fast.names());
        } else {
            StatusCommand status = (StatusCommand) command;
            assertThat(status.daemon.socket).as(argv.toString()).isEqualTo(fast.socket());
            assertThat(status.output.json).as(argv.toString()).isEqualTo(fast.json());
            assertThat(status.name).as(argv.toString()).isEqualTo(fast.name());
        }
    }

    @Example
    void thePlainFormsAreTakenAndTheRestDeclined() {
        assertThat(FastVerbs.parse("list")).isEqualTo(new FastVerbs.Parsed("list", null, false, false, null));
        assertThat(FastVerbs.parse("--socket", "/s", "list", "--names", "--json"))
                .isEqualTo(new FastVerbs.Parsed("list", Path.of("/s"), true, true, null));
        assertThat(FastVerbs.parse("--json", "status", "web1", "--socket=/s"))
                .isEqualTo(new FastVerbs.Parsed("status", Path.of("/s"), true, false, "web1"));
        for (List<String> declined : List.of(List.<String>of(), List.of("status"), List.of("status", "a", "b"),
                List.of("list", "--help"), List.of("list", "-h"), List.of("--version"), List.of("help", "list"),
                List.of("list", "--json", "--json"), List.of("list", "--socket", "/a", "--socket", "/b"),
                List.of("--socket", "list", "status", "x"), List.of("list", "--socket"), List.of("list", "--socket="),
                List.of("status", "-x"), List.of("status", "@file"), List.of("list", "--"), List.of("stop", "x"),
                List.of("status", "x", "--names"), List.of("list", "x"), List.of("--socket=\u0000", "list"))) {
            assertThat(FastVerbs.parse(declined.toArray(String[]::new))).as(declined.toString()).isNull();
        }
    }

    /** Words glued at random, and whole plain parts in any order, so that both outcomes are common. */
    @Provide
    Arbitrary<List<String>> argvs() {
        Arbitrary<List<String>> noise = Arbitraries.of("list", "status", "--json", "--names", "--socket",
                "--socket=/tmp/s1", "/tmp/s2", "vm1", "web-2", "-x", "--", "@f", "", "--help", "-h", "-V",
                "--version", "help", "--socket=", "stop", "--socket=list", "--socket=-x").map(List::of);
        Arbitrary<List<String>> parts = Arbitraries.of(List.of("list"), List.of("status"), List.of("--json"),
                List.of("--names"), List.of("--socket", "/tmp/s2"), List.of("--socket=/tmp/s1"), List.of("vm1"),
                List.of("web-2"), List.of("--socket", "status"));
        Arbitrary<List<String>> glued = Arbitraries.frequencyOf(Tuple.of(1, noise), Tuple.of(4, parts)).list()
                .ofMaxSize(5).map(l -> l.stream().flatMap(List::stream).toList());
        return Arbitraries.oneOf(noise.list().ofMaxSize(6).map(l -> l.stream().flatMap(List::stream).toList()),
                glued);
    }
}

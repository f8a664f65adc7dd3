package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
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
    @Property(tries = 6000)
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
        } else if (command instanceof LifecycleCommand c) {
            assertThat(c.daemon.socket).as(argv.toString()).isEqualTo(fast.socket());
            assertThat(c.output.json).as(argv.toString()).isEqualTo(fast.json());
            assertThat(c.names).as(argv.toString()).isEqualTo(fast.vms());
            assertThat(c.all).as(argv.toString()).isEqualTo(fast.all());
            assertThat(c.noWait).as(argv.toString()).isEqualTo(fast.noWait());
            assertThat(c.allowUnpersisted).as(argv.toString()).isFalse();
            if (c instanceof LifecycleCommand.Start start) {
                assertThat(start.waitReady).as(argv.toString()).isFalse();
            } else if (c instanceof LifecycleCommand.Stop stop) {
                assertThat(stop.force).as(argv.toString()).isFalse();
                assertThat(stop.timeout).as(argv.toString()).isNull();
            }
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
        assertThat(FastVerbs.parse("kill", "a", "--socket", "/s", "b", "a"))
                .isEqualTo(new FastVerbs.Parsed("kill", Path.of("/s"), false, false, null, List.of("a", "b", "a"),
                        false, false));
        assertThat(FastVerbs.parse("--json", "reset-failed", "--no-wait", "--all"))
                .isEqualTo(new FastVerbs.Parsed("reset-failed", null, true, false, null, List.of(), true, true));
        for (List<String> declined : List.of(List.<String>of(), List.of("status"), List.of("status", "a", "b"),
                List.of("list", "--help"), List.of("list", "-h"), List.of("--version"), List.of("help", "list"),
                List.of("list", "--json", "--json"), List.of("list", "--socket", "/a", "--socket", "/b"),
                List.of("--socket", "list", "status", "x"), List.of("list", "--socket"), List.of("list", "--socket="),
                List.of("status", "-x"), List.of("status", "@file"), List.of("list", "--"), List.of("logs", "x"),
                List.of("status", "x", "--names"), List.of("list", "x"), List.of("--socket=\u0000", "list"),
                List.of("kill"), List.of("kill", "a", "--all"), List.of("stop", "a", "--force"),
                List.of("stop", "--timeout", "3s", "a"), List.of("start", "--wait-ready", "a"),
                List.of("kill", "--no-wait", "--no-wait", "a"), List.of("kill", "--all", "--all"),
                List.of("pause", "a", "-x"), List.of("resume", "--", "a"), List.of("reset", "@f"))) {
            assertThat(FastVerbs.parse(declined.toArray(String[]::new))).as(declined.toString()).isNull();
        }
    }

    /** Words glued at random, and whole plain parts in any order, so that both outcomes are common. */
    @Provide
    Arbitrary<List<String>> argvs() {
        Arbitrary<List<String>> noise = Arbitraries.of("list", "status", "--json", "--names", "--socket",
                "--socket=/tmp/s1", "/tmp/s2", "vm1", "web-2", "-x", "--", "@f", "", "--help", "-h", "-V",
                "--version", "help", "--socket=", "stop", "--socket=list", "--socket=-x", "kill", "start",
                "reset-failed", "--all", "--no-wait", "--force", "--wait-ready", "--timeout", "5s", "list",
                "--socket=kill").map(List::of);
        Arbitrary<List<String>> parts = Arbitraries.of(List.of("list"), List.of("status"), List.of("--json"),
                List.of("kill"), List.of("start"), List.of("stop"), List.of("restart"), List.of("pause"),
                List.of("resume"), List.of("reset"), List.of("reset-failed"), List.of("--all"), List.of("--no-wait"),
                List.of("--names"), List.of("--socket", "/tmp/s2"), List.of("--socket=/tmp/s1"), List.of("vm1"),
                List.of("web-2"), List.of("--socket", "status"), List.of("help"), List.of("list"));
        Arbitrary<List<String>> glued = Arbitraries.frequencyOf(Tuple.of(1, noise), Tuple.of(4, parts)).list()
                .ofMaxSize(5).map(l -> l.stream().flatMap(List::stream).toList());
        // a verb and what may follow it, so that every verb's plain forms come up often
        Arbitrary<List<String>> verbFirst = Combinators.combine(Arbitraries.of("list", "status", "start", "stop",
                "restart", "kill", "pause", "resume", "reset", "reset-failed"),
                Arbitraries.frequencyOf(Tuple.of(1, noise), Tuple.of(6, parts)).list().ofMaxSize(4))
                .as((v, rest) -> Stream.concat(Stream.of(v), rest.stream().flatMap(List::stream)).toList());
        return Arbitraries.oneOf(noise.list().ofMaxSize(6).map(l -> l.stream().flatMap(List::stream).toList()),
                glued, verbFirst);
    }
}

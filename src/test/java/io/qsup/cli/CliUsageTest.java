package io.qsup.cli;

import static io.qsup.cli.CliRun.qsupRaw;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A wrong command line gets one line naming the problem and one pointing to the verb's help, exit code 2, never the
 * whole help text; global options are taken before the verb as well as after it.
 */
class CliUsageTest {

    @Test
    void anUnknownOptionNamesItAndPointsToTheVerbsHelp() {
        CliRun r = qsupRaw("list", "--bogus");
        assertShortUsageError(r);
        assertThat(r.err()).isEqualTo("qsup list: unknown option '--bogus'\n"
                + "Try 'qsup list --help' for its options and examples.\n");

        CliRun typo = qsupRaw("stop", "--forse", "web1");
        assertShortUsageError(typo);
        assertThat(typo.err()).startsWith("qsup stop: unknown option '--forse'; did you mean '--force'?\n");
    }

    @Test
    void aMissingArgumentNamesIt() {
        CliRun r = qsupRaw("status");
        assertShortUsageError(r);
        assertThat(r.err()).startsWith("qsup status: missing required parameter: 'NAME'\n")
                .contains("Try 'qsup status --help'");

        CliRun noValue = qsupRaw("list", "--socket");
        assertShortUsageError(noValue);
        assertThat(noValue.err()).contains("'--socket'");

        CliRun noVm = qsupRaw("stop");
        assertShortUsageError(noVm);
        assertThat(noVm.err()).startsWith("qsup stop: name at least one VM, or use --all\n");
    }

    @Test
    void anUnknownVerbSuggestsTheNearOnes() {
        CliRun r = qsupRaw("stpo", "web1");
        assertShortUsageError(r);
        assertThat(r.err()).startsWith("qsup: unknown verb 'stpo'; did you mean 'stop'")
                .contains("Try 'qsup --help' for the verbs");

        assertShortUsageError(qsupRaw());
        assertThat(qsupRaw().err()).startsWith("qsup: name a verb");
    }

    @Test
    void jsonBeforeAVerbThatPrintsOnlyTextIsRefusedNotIgnored() {
        CliRun r = qsupRaw("--json", "console", "web1");
        assertShortUsageError(r);
        assertThat(r.err()).startsWith("qsup console: --json does not apply");

        CliRun help = qsupRaw("--json", "console", "--help");
        assertThat(help.code()).as(help.toString()).isZero();
        assertThat(help.out()).startsWith("Usage: qsup console");
    }

    @Test
    void helpAndVersionAreWholeThoughARunBuildsOnlyTheVerbItNames() {
        CliRun help = qsupRaw("--help");
        assertThat(help.code()).as(help.toString()).isZero();
        for (Class<?> verb : QsupMain.class.getAnnotation(picocli.CommandLine.Command.class).subcommands()) {
            String name = verb.getAnnotation(picocli.CommandLine.Command.class).name();
            assertThat(help.out()).as("qsup --help lists " + name).containsPattern("(?m)^ +" + name + " ");
        }
        CliRun version = qsupRaw("--version");
        assertThat(version.code()).isZero();
        assertThat(version.out()).isEqualTo("qsup " + io.qsup.daemon.Version.get() + "\n");

        CliRun verbHelp = qsupRaw("--socket", "/nonexistent.sock", "status", "--help");
        assertThat(verbHelp.code()).as(verbHelp.toString()).isZero();
        assertThat(verbHelp.out()).startsWith("Usage: qsup status");
        CliRun helpVerb = qsupRaw("help", "start");
        assertThat(helpVerb.code()).as(helpVerb.toString()).isZero();
        assertThat(helpVerb.out()).startsWith("Usage: qsup start");
    }

    @Test
    void theRealLauncherPrintsTheSameTwoLinesAndNothingElse() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        for (List<String> args : List.of(List.of("frobnicate"), List.of("list", "--bogus"), List.of("status"))) {
            List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", cp,
                    "io.qsup.cli.QsupMain"));
            cmd.addAll(args);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String all = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as(args + ":\n" + all).isEqualTo(ExitCodes.USAGE);
            assertThat(all.lines().count()).as(args + ":\n" + all).isBetween(1L, 3L);
            assertThat(all).as(args.toString()).contains("--help'").doesNotContain("Usage:");
        }
    }

    /** At most 3 lines, all on stderr, exit code 2, and not the help text. */
    private static void assertShortUsageError(CliRun r) {
        assertThat(r.code()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.out()).as(r.toString()).isEmpty();
        assertThat(r.err().lines().count()).as(r.toString()).isBetween(1L, 3L);
        assertThat(r.err()).as(r.toString()).doesNotContain("Usage:");
    }
}

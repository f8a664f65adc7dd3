package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.GuestConsole;
import io.qsup.testing.Tmux;
import io.qsup.vm.VmState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code qsup top} in a real pseudo-terminal (tmux) against real VMs: a row per VM, a CPU column that moves for a guest
 * running a busy loop, sorting by a key, {@code q} and Ctrl-C leaving the terminal as it was; and without a terminal, a
 * plain table every interval.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TopTerminalTest {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private SupervisorFixture fixture;
    private DaemonControl control;
    private DaemonSettings settings;
    private final Tmux tmux = new Tmux("top-test");

    @BeforeAll
    void start() throws Exception {
        fixture = new SupervisorFixture(2);
        fixture.writeVm("alpha", "restart: no");
        fixture.writeVm("spinner", "restart: no");
        fixture.writeVm("zulu", "restart: no\nautostart: false");
        settings = fixture.settings();
        Supervisor sup = fixture.supervisor(SupervisorFixture.fastProbe());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        sup.startup();
        for (String vm : List.of("alpha", "spinner")) {
            sup.controller(vm).orElseThrow().await(s -> s == VmState.RUNNING, WAIT);
        }
        fixture.readyConsole("alpha", WAIT).close();
        try (GuestConsole c = fixture.readyConsole("spinner", WAIT)) {
            c.send("spin");
            assertThat(c.pollLine(l -> l.contains("QSUP-GUEST OK spin"), Duration.ofSeconds(30))).isPresent();
        }
    }

    @AfterAll
    void stop() throws Exception {
        tmux("kill-server");
        if (control != null) {
            control.close();
        }
        fixture.close();
    }

    @Test
    void showsEveryVmSortsByKeyAndQRestoresTheTerminal() throws Exception {
        tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "40", "bash --norc --noprofile");
        tmux("send-keys", "-t", "t", "stty -a > " + fixture.base.resolve("stty-before") + "; clear", "Enter");
        tmux("send-keys", "-t", "t", qsupTop(""), "Enter");
        String pane = awaitPane(p -> p.contains("sorted by CPU%") && row(p, "zulu") != null, "the first frame");
        assertThat(row(pane, "alpha")).isNotNull();
        assertThat(row(pane, "spinner")).isNotNull();
        assertThat(row(pane, "zulu")).startsWith("zulu stopped - -");

        // the busy guest's CPU column shows a number that moves from frame to frame, above the idle guest's
        Set<String> spinnerCpu = new HashSet<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (spinnerCpu.size() < 3 && System.nanoTime() < deadline) {
            pane = capture();
            String cpu = cell(pane, "spinner", 2);
            if (cpu != null && !cpu.equals("-")) {
                spinnerCpu.add(cpu);
            }
            Thread.sleep(700);
        }
        assertThat(spinnerCpu).as("CPU%% values of the spinning guest, frame by frame").hasSizeGreaterThanOrEqualTo(3);
        pane = awaitPane(p -> cpuOf(p, "spinner") > cpuOf(p, "alpha") && cpuOf(p, "spinner") > 20,
                "the spinning guest's CPU above the idle one's");
        assertThat(rowOrder(pane)).as("sorted by CPU").startsWith("spinner");

        tmux("send-keys", "-t", "t", "n");
        pane = awaitPane(p -> p.contains("sorted by NAME"), "sorting by name after 'n'");
        assertThat(rowOrder(pane)).containsExactly("alpha", "spinner", "zulu");
        tmux("send-keys", "-t", "t", "c");
        pane = awaitPane(p -> p.contains("sorted by CPU%"), "sorting by CPU after 'c'");
        assertThat(rowOrder(pane)).containsExactly("spinner", "alpha", "zulu");

        tmux("send-keys", "-t", "t", "q");
        pane = awaitPane(p -> p.contains("QSUP-EXIT=0"), "top to exit on q");
        assertThat(pane).as("the alternate screen is left").doesNotContain("sorted by");
        assertTerminalRestored("after q");
    }

    @Test
    void ctrlCAlsoRestoresTheTerminal() throws Exception {
        tmux("new-session", "-d", "-s", "c", "-x", "160", "-y", "40", "bash --norc --noprofile");
        tmux("send-keys", "-t", "c", qsupTop(""), "Enter");
        awaitPane("c", p -> p.contains("sorted by CPU%") && row(p, "zulu") != null, "the first frame");
        tmux("send-keys", "-t", "c", "C-c");
        String pane = awaitPane("c", p -> p.matches("(?s).*QSUP-EXIT=\\d.*"), "top to exit on Ctrl-C");
        assertThat(pane).as("exit status of a SIGINT").contains("QSUP-EXIT=130");
        assertThat(pane).doesNotContain("sorted by");
        tmux("send-keys", "-t", "c", "clear; stty -a | tr ' ' '\\n' | grep -x -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' ';"
                + " echo MODES-$((6*7))", "Enter"); // the marker is computed, so the echoed command never matches
        String modes = awaitPane("c", p -> p.contains("MODES-42"), "stty's report");
        assertThat(modes).contains("icanon echo").doesNotContain("-icanon").doesNotContain("-echo ");
    }

    @Test
    void withoutATerminalItPrintsAPlainTableEveryInterval() {
        CliRun r = CliRun.qsup(settings.controlSocket(), "top", "-n", "2", "--interval", "500ms", "--sort", "name");
        assertThat(r.code()).as(r.toString()).isZero();
        assertThat(r.out()).doesNotContain("\u001b");
        List<String> headers = r.out().lines().filter(l -> l.startsWith("NAME")).toList();
        assertThat(headers).hasSize(2);
        assertThat(headers.get(0)).matches("NAME +STATE +CPU% +RSS +READ/s +WRITE/s +UPTIME +RESTARTS +IP");
        List<String> names = r.out().lines().filter(l -> !l.isBlank() && !l.startsWith("NAME"))
                .map(l -> l.split("\\s+")[0]).toList();
        assertThat(names).containsExactly("alpha", "spinner", "zulu", "alpha", "spinner", "zulu");
        assertThat(r.out().lines().filter(l -> l.startsWith("spinner")).findFirst().orElseThrow())
                .contains(" running ").endsWith(" -");
    }

    /** {@code qsup top ARGS} as a command line for the pane, through a script: typed in full, tmux can cut it. */
    private String qsupTop(String args) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Path script = fixture.base.resolve("qsup-top" + args.replaceAll("[^a-z0-9]+", "-") + ".sh");
        Files.writeString(script, "exec '" + java + "' --enable-native-access=ALL-UNNAMED -cp '" + cp
                + "' io.qsup.cli.QsupMain top " + args + " --socket '" + settings.controlSocket() + "'\n");
        return "bash '" + script + "'; echo QSUP-EXIT=$?";
    }

    private void assertTerminalRestored(String when) throws Exception {
        tmux("send-keys", "-t", "t", "clear; stty -a | diff -q - " + fixture.base.resolve("stty-before")
                + " && echo SAME-MODES", "Enter");
        awaitPane(p -> p.contains("SAME-MODES"), "the terminal modes " + when + " to equal those before");
    }

    /** The pane's table row of {@code vm} with blanks squeezed, or null. */
    private static String row(String pane, String vm) {
        for (String l : pane.split("\n")) {
            if (l.startsWith(vm + " ")) {
                return l.trim().replaceAll("\\s+", " ");
            }
        }
        return null;
    }

    private static String cell(String pane, String vm, int column) {
        String r = row(pane, vm);
        if (r == null) {
            return null;
        }
        String[] f = r.split(" ");
        return f.length > column ? f[column] : null;
    }

    private static double cpuOf(String pane, String vm) {
        String c = cell(pane, vm, 2);
        try {
            return c == null ? -1 : Double.parseDouble(c);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static List<String> rowOrder(String pane) {
        List<String> names = new ArrayList<>();
        for (String l : pane.split("\n")) {
            for (String vm : List.of("alpha", "spinner", "zulu")) {
                if (l.startsWith(vm + " ")) {
                    names.add(vm);
                }
            }
        }
        return names;
    }

    private String capture() throws Exception {
        return tmux("capture-pane", "-p", "-t", "t");
    }

    private String awaitPane(Predicate<String> p, String what) throws Exception {
        return awaitPane("t", p, what);
    }

    private String awaitPane(String session, Predicate<String> p, String what) throws Exception {
        return Tmux.await(() -> tmux("capture-pane", "-p", "-t", session), p, what);
    }

    private String tmux(String... args) throws IOException, InterruptedException {
        return tmux.run(args);
    }
}

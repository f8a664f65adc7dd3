package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.GuestConsole;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The lifecycle verbs as a user at a terminal sees them: the real CLI as a child process, under a real pseudo-terminal
 * ({@code script} from util-linux) and off one, against a real daemon with test-guest VMs under TCG. On a terminal a
 * stop of a guest that ignores ACPI shows a live line naming the rung and the time left; off a terminal, and with
 * {@code --json}, only the result prints. Several VMs are requested at once, not one after another.
 */
class LifecycleProgressTest {
    private static final Duration BOOT = Duration.ofSeconds(90);
    private static final ObjectMapper JSON = new ObjectMapper();
    private SupervisorFixture fixture;
    private InProcessDaemon daemon;
    private Supervisor sup;
    private Path socket;

    @BeforeEach
    void startDaemon() throws Exception {
        fixture = new SupervisorFixture(2);
        // no guest agent: the deaf guest must hold the ladder on its powerdown rung
        fixture.writeVm("deaf", "autostart: false\nrestart: no\nstop-timeout: 10s\nguest-agent: false");
        fixture.writeVm("one", "autostart: false\nrestart: no");
        fixture.writeVm("two", "autostart: false\nrestart: no");
        daemon = InProcessDaemon.start(fixture);
        sup = daemon.supervisor();
        socket = daemon.socket();
    }

    @AfterEach
    void stopDaemon() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
    }

    @Test
    void stopOnATerminalShowsTheRungAndTheTimeLeftAndOffATerminalOnlyTheResult() throws Exception {
        startDeafGuest();
        Run tty = underPty("stop", "deaf"); // counts down from the VM's own stop-timeout
        assertThat(tty.code()).as(tty.toString()).isZero();
        assertThat(tty.out()).as(tty.toString())
                .containsPattern("deaf: powerdown sent, waiting for the guest \\(([1-9]|10) s left\\)")
                .contains("\u001b[1A") // the line is redrawn in place
                .contains("deaf: stopped by quit after ");
        assertThat(sup.get("deaf").orElseThrow().state()).isEqualTo(VmState.STOPPED);

        startDeafGuest();
        Run piped = offTerminal("stop", "deaf", "--timeout", "10s");
        assertThat(piped.code()).as(piped.toString()).isZero();
        assertThat(piped.out()).as(piped.toString()).matches("deaf: stopped by quit after \\d+\\.\\d s\n");

        startDeafGuest();
        Run json = underPty("stop", "deaf", "--force", "--json");
        assertThat(json.code()).as(json.toString()).isZero();
        assertThat(json.out()).as("no live line with --json").doesNotContain("\u001b[").doesNotContain("requested");
        JsonNode r = JSON.readTree(json.out()).get(0);
        assertThat(r.path("rung").asText()).isEqualTo("quit");
    }

    @Test
    void severalVmsAreRequestedAtOnceWithOneLiveLineEach() throws Exception {
        Run tty = underPty("start", "one", "two");
        assertThat(tty.code()).as(tty.toString()).isZero();
        assertThat(tty.out()).as(tty.toString())
                .contains("one: start requested").contains("two: start requested")
                .contains("\u001b[2A") // two lines, redrawn together
                .endsWith("one: running\r\ntwo: running\r\n");

        // Both launches began before either finished: the second request did not wait for the first.
        List<String> order = new ArrayList<>();
        for (VmEvent e : fixture.events) {
            if (e instanceof VmEvent.StateChange s && (s.to() == VmState.STARTING || s.to() == VmState.RUNNING)) {
                order.add(s.vm() + " " + s.to().label());
            }
        }
        assertThat(order).as("state changes in order").hasSize(4);
        assertThat(order.subList(0, 2)).containsExactlyInAnyOrder("one starting", "two starting");

        fixture.events.clear();
        Run stop = offTerminal("stop", "--all", "--force");
        assertThat(stop.code()).as(stop.toString()).isZero();
        assertThat(stop.out()).startsWith("deaf: stopped").contains("\none: stopped by quit").contains("\ntwo: stopped by quit");
    }

    private void startDeafGuest() throws Exception {
        sup.start("deaf").get(60, TimeUnit.SECONDS);
        try (GuestConsole c = fixture.readyConsole("deaf", BOOT)) {
            c.command("ignore-acpi", Duration.ofSeconds(30));
        }
    }

    /** The CLI's whole output and exit code. */
    private record Run(int code, String out) {
        @Override
        public String toString() {
            return "exit " + code + "\n" + out.replace("\u001b", "<ESC>");
        }
    }

    private List<String> qsupCommand(String... args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", cp,
                "io.qsup.cli.QsupMain", "--socket", socket.toString()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs qsup with a pseudo-terminal as its standard input and output: {@code script -qfec CMD /dev/null}. */
    private Run underPty(String... args) throws Exception {
        StringBuilder shell = new StringBuilder();
        for (String a : qsupCommand(args)) {
            shell.append(shell.isEmpty() ? "" : " ").append('\'').append(a.replace("'", "'\\''")).append('\'');
        }
        return run(List.of("script", "-qfec", shell.toString(), "/dev/null"));
    }

    /** Runs qsup with pipes, as a script would. */
    private Run offTerminal(String... args) throws Exception {
        return run(qsupCommand(args));
    }

    private static Run run(List<String> cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.put("TERM", "xterm");
        env.remove("QSUP_SOCKET");
        Process p = pb.start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (java.io.IOException e) {
                return "(reading failed: " + e + ")";
            }
        });
        if (!p.waitFor(90, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("qsup did not finish within 90 s: " + cmd.getLast() + "\n" + out.getNow(""));
        }
        return new Run(p.exitValue(), out.get(10, TimeUnit.SECONDS));
    }
}

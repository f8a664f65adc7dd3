package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.cli.QsupMain;
import io.qsup.testing.QemuCensus;
import io.qsup.testing.QsupdProcess;
import io.qsup.testing.TestGuest;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The shipped demo as the README runs it: qsupd as a child process on the shipped {@code config/qsupd.yaml} and
 * {@code config/vms}, with only its run, state and log folders moved to a temp folder. The demo boots the project's
 * guest to a shell prompt on its serial log, {@code qsup stop} ends it on the powerdown rung, and {@code poweroff} sent
 * through {@code qsup console} ends it as a guest shutdown, after which its {@code restart: on-failure} leaves it
 * stopped.
 */
class DemoTest {
    static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", ".")).toAbsolutePath().normalize();
    static final Path CONFIG = PROJECT.resolve("config");
    private static final String PROMPT = "qsup-demo:/# ";
    private static final Duration BOOT = Duration.ofSeconds(90);
    private static final ObjectMapper JSON = new ObjectMapper();

    private Path tmp;
    private Path socket;
    private Path serialLog;
    private QsupdProcess qsupd;

    @BeforeEach
    void startShippedDaemon() throws Exception {
        TestGuest.get(); // what scripts/setup builds before the README's first command
        tmp = Files.createTempDirectory(Path.of("/tmp"), "qsup-demo");
        socket = tmp.resolve("run/qsupd.sock");
        serialLog = tmp.resolve("run/log/demo/serial.log");
        String shipped = Files.readString(CONFIG.resolve("qsupd.yaml"));
        String settings = shipped.replace("vms-dir: vms ", "vms-dir: " + CONFIG.resolve("vms") + " ")
                .replace("../run", tmp.resolve("run").toString());
        assertThat(settings).as("the shipped settings still have the lines this test moves")
                .contains("vms-dir: " + CONFIG.resolve("vms")).doesNotContain("../run");
        Path settingsFile = Files.writeString(tmp.resolve("qsupd.yaml"), settings);
        qsupd = QsupdProcess.start(settingsFile, tmp.resolve("qsupd.log"));
        qsupd.awaitLog("qsupd ready", Duration.ofSeconds(60));
    }

    @AfterEach
    void cleanUp() throws Exception {
        if (qsupd != null) {
            qsupd.close();
        }
        try (QemuCensus census = new QemuCensus(tmp)) {
            census.killAll(); // by pid, only QEMUs whose argv names this test's folder
        }
        try (Stream<Path> s = Files.walk(tmp)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    @Test
    void demoBootsToAShellStopsOnPowerdownAndAPoweroffInTheConsoleIsAGuestShutdown() throws Exception {
        // qsupd autostarts the demo; the demo-bios waits for an operator.
        String boot = awaitSerial(0, l -> l.contains(PROMPT), BOOT);
        assertThat(boot).contains("qsup demo guest: Linux").contains("a root shell on the serial console");
        JsonNode list = JSON.readTree(qsup("list", "--json").out());
        assertThat(list.findValuesAsText("state")).hasSize(2);
        assertThat(vm("demo").path("state").asText()).isEqualTo("running");
        assertThat(vm("demo-bios").path("state").asText()).isEqualTo("stopped");

        Cli stop = qsup("stop", "demo", "--json");
        assertThat(stop.exit()).as(stop.toString()).isZero();
        JsonNode stopped = JSON.readTree(stop.out()).get(0);
        assertThat(stopped.path("state").asText()).isEqualTo("stopped");
        assertThat(stopped.path("rung").asText()).as("the guest answered the ACPI power button").isEqualTo("powerdown");
        assertThat(stopped.path("seconds").asDouble()).as("seconds on the ladder").isLessThan(2.0);
        assertThat(cause(vm("demo"))).isEqualTo("operator-stop");

        long before = Files.size(serialLog);
        Cli start = qsup("start", "demo");
        assertThat(start.exit()).as(start.toString()).isZero();
        awaitSerial(before, l -> l.contains(PROMPT), BOOT);

        // echo poweroff | qsup console demo
        Path input = Files.writeString(tmp.resolve("console-input"), "poweroff\n");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> console = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                QsupMain.class.getName(),
                "console", "demo", "--socket", socket.toString()));
        Process attach = new ProcessBuilder(console).redirectInput(input.toFile()).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("console-output").toFile()).start();
        assertThat(attach.waitFor(60, TimeUnit.SECONDS)).as("qsup console detaches at the end of its input").isTrue();
        assertThat(attach.exitValue()).as(Files.readString(tmp.resolve("console-output"))).isZero();

        JsonNode off = awaitVm("demo", v -> v.path("state").asText().equals("stopped"), Duration.ofSeconds(30));
        assertThat(cause(off)).isEqualTo("guest-shutdown");
        assertThat(awaitSerial(before, l -> l.contains("reboot: Power down"), Duration.ofSeconds(10)))
                .as("busybox init carried out the poweroff").contains("The system is going down NOW!");
        // restart: on-failure does not count a guest power-off as a failure; a restart would start within its 1 s delay
        Thread.sleep(3000);
        JsonNode later = vm("demo");
        assertThat(later.path("state").asText()).isEqualTo("stopped");
        assertThat(later.path("restart-count").asInt()).isZero();
    }

    /** The cause word of {@code last-exit-cause}: {@code {"cause": WORD, "detail": ..., "at": ...}}. */
    private static String cause(JsonNode vm) {
        return vm.path("last-exit-cause").path("cause").asText();
    }

    private JsonNode vm(String name) throws IOException {
        Cli status = qsup("status", name, "--json");
        assertThat(status.exit()).as(status.toString()).isZero();
        return JSON.readTree(status.out());
    }

    private JsonNode awaitVm(String name, Predicate<JsonNode> p, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode v = vm(name);
        while (!p.test(v)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(name + " not as expected within " + timeout + ": " + v + "\nqsupd log:\n"
                        + qsupd.log());
            }
            Thread.sleep(100);
            v = vm(name);
        }
        return v;
    }

    /** The serial log from byte {@code from} on, once it holds a line (or the partial last line) matching {@code p}. */
    private String awaitSerial(long from, Predicate<String> p, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            String text = "";
            if (Files.exists(serialLog)) {
                byte[] all = Files.readAllBytes(serialLog);
                text = new String(all, (int) Math.min(from, all.length), (int) Math.max(0, all.length - from),
                        StandardCharsets.UTF_8);
            }
            if (text.lines().anyMatch(p)) {
                return text;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the serial log " + serialLog + " shows no expected line within " + timeout
                        + "; from byte " + from + ":\n" + text + "\nqsupd log:\n" + qsupd.log());
            }
            Thread.sleep(100);
        }
    }

    private Cli qsup(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--socket", socket.toString()));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = QsupMain.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(all.toArray(String[]::new));
        return new Cli(exit, out.toString(), err.toString());
    }

    private record Cli(int exit, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exit + "\n--- out\n" + out + "--- err\n" + err;
        }
    }
}

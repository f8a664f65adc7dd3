package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.supervisor.SupervisorFixture;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * qsupd as a real child process in hostile surroundings: a descriptor limit that runs out under idle connections, and
 * a start under {@code nohup}, which leaves SIGHUP ignored.
 */
class QsupdDescriptorsAndSignalsTest {
    private static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));
    private static final Duration WAIT = Duration.ofSeconds(60);
    private final List<Process> daemons = new ArrayList<>();
    private SupervisorFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : daemons) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        fx.close();
    }

    @Test
    void runningOutOfDescriptorsOnlyPausesTheControlSocket() throws Exception {
        Assumptions.assumeTrue(onPath("prlimit"), "needs prlimit (util-linux) to lower qsupd's descriptor limit");
        // The connection cap above the descriptor limit, so that accept() runs into EMFILE first.
        Files.writeString(fx.settingsFile, Files.readString(fx.settingsFile) + "control-max-connections: 256\n");
        List<String> cmd = new ArrayList<>(List.of("prlimit", "--nofile=128:128"));
        cmd.addAll(javaQsupd());
        Process q = start(new ProcessBuilder(cmd), "qsupd.log");
        awaitLog("qsupd.log", "qsupd ready");
        Path socket = fx.settings().controlSocket();

        List<AFUNIXSocket> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 200; i++) {
                idle.add(AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(socket.toFile())));
            }
            awaitLog("qsupd.log", "Too many open files");
            Thread.sleep(1500); // let accept() fail several times in this one burst
        } finally {
            for (AFUNIXSocket s : idle) {
                s.close();
            }
        }

        QmpClient.Options opts = QmpClient.Options.defaults().withConnectTimeout(Duration.ofSeconds(15));
        try (QmpClient c = QmpClient.connect(new QmpEndpoint.Unix(socket), opts)) {
            assertThat(c.greeting().pkg()).startsWith("qsupd ");
            assertThat(c.execute("query-vms").isArray()).isTrue();
        }
        assertThat(q.isAlive()).as("qsupd after running out of descriptors").isTrue();

        String log = Files.readString(fx.base.resolve("qsupd.log"));
        assertThat(log).doesNotContain("stops serving");
        List<String> warnings = lines(log, "control: cannot accept connections");
        List<String> recoveries = lines(log, "control: accepting connections again");
        assertThat(warnings).as("one warning per burst of failures, not one per failure:\n%s", log)
                .isNotEmpty().hasSameSizeAs(recoveries);
        Matcher m = Pattern.compile("after (\\d+) failed attempts").matcher(recoveries.get(0));
        assertThat(m.find()).as(recoveries.get(0)).isTrue();
        assertThat(Integer.parseInt(m.group(1))).as("failed attempts in the burst").isGreaterThan(2);
    }

    @Test
    void underNohupTheLauncherKeepsSighupForReload() throws Exception {
        Assumptions.assumeTrue(onPath("nohup"), "needs nohup (coreutils)");
        ProcessBuilder pb = new ProcessBuilder("nohup", PROJECT.resolve("bin/qsupd").toString(),
                "--config", fx.settingsFile.toString());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().put("QSUP_JAR", classpathJar().toString());
        Process q = start(pb, "qsupd.log");
        awaitLog("qsupd.log", "qsupd ready");

        Files.writeString(fx.base.resolve("vms/late.yaml"), "memory: 32M\nautostart: false\n");
        signalHup(q);
        awaitLog("qsupd.log", "reload: added [late]");
        assertThat(q.isAlive()).isTrue();
    }

    @Test
    void underNohupWithoutTheLauncherTheLogSaysReloadBySignalIsUnavailable() throws Exception {
        Assumptions.assumeTrue(onPath("nohup"), "needs nohup (coreutils)");
        List<String> cmd = new ArrayList<>(List.of("nohup"));
        cmd.addAll(javaQsupd());
        Process q = start(new ProcessBuilder(cmd), "qsupd.log");
        awaitLog("qsupd.log", "qsupd ready");
        String log = Files.readString(fx.base.resolve("qsupd.log"));
        assertThat(lines(log, "SIGHUP is ignored")).singleElement().asString()
                .contains("qsup reload").contains("bin/qsupd");
    }

    private List<String> javaQsupd() {
        return List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                QsupdMain.class.getName(), "--config", fx.settingsFile.toString());
    }

    /** A jar holding only a manifest whose Class-Path is this test's class path, for the launcher's QSUP_JAR. */
    private Path classpathJar() throws IOException {
        Manifest mf = new Manifest();
        mf.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        String cp = List.of(System.getProperty("java.class.path").split(File.pathSeparator)).stream()
                .map(e -> Path.of(e).toUri().toString())
                .collect(Collectors.joining(" "));
        mf.getMainAttributes().put(Attributes.Name.CLASS_PATH, cp);
        Path jar = fx.base.resolve("qsup.jar");
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out, mf)) {
            j.flush();
        }
        return jar;
    }

    private Process start(ProcessBuilder pb, String logName) throws IOException {
        // output to a file, never a pipe: nothing may tie the daemon to the test JVM
        Process p = pb.redirectErrorStream(true).redirectOutput(fx.base.resolve(logName).toFile()).start();
        daemons.add(p);
        return p;
    }

    private static void signalHup(Process p) throws Exception {
        Process kill = new ProcessBuilder("kill", "-HUP", Long.toString(p.pid())).start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(kill.exitValue()).isZero();
    }

    private static List<String> lines(String text, String containing) {
        return text.lines().filter(l -> l.contains(containing)).toList();
    }

    private static boolean onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, program))) {
                return true;
            }
        }
        return false;
    }

    private void awaitLog(String logName, String text) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        Path f = fx.base.resolve(logName);
        while (!(Files.exists(f) && Files.readString(f).contains(text))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("'" + text + "' not in " + f + " within " + WAIT + ":\n"
                        + (Files.exists(f) ? Files.readString(f) : "(no log)"));
            }
            Thread.sleep(100);
        }
    }
}

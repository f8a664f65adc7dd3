package io.qsup.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.Command;
import io.qsup.testing.QsupdProcess;
import io.qsup.vm.ProcessInspector;
import java.net.DatagramPacket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * qsupd as a child process: READY=1 to systemd's notify socket, SIGHUP reloads the definitions, SIGTERM exits and
 * leaves the VMs running.
 */
class QsupdSignalsTest {
    private SupervisorFixture fx;
    private Process qsupd;
    private Path hookLog;

    @BeforeEach
    void setUp() throws Exception {
        fx = new SupervisorFixture(2);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (qsupd != null) {
            qsupd.destroyForcibly();
            qsupd.waitFor(10, TimeUnit.SECONDS);
        }
        fx.close();
    }

    @Test
    void sighupStartsANewVmAndSigtermLeavesThemRunning() throws Exception {
        hookLog = fx.base.resolve("hook.log");
        Path hook = fx.base.resolve("hook.sh");
        Files.writeString(hook, "#!/bin/sh\necho \"$QSUP_VM $QSUP_OLD_STATE $QSUP_NEW_STATE\" >> " + hookLog + "\n");
        Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
        Files.writeString(fx.base.resolve("vms/one.yaml"), "memory: 32M\n");
        Path notify = fx.base.resolve("notify.sock");
        try (AFUNIXDatagramSocket systemd = AFUNIXDatagramSocket.newInstance()) {
            systemd.bind(AFUNIXSocketAddress.of(notify));
            systemd.setSoTimeout(90_000);
            ProcessBuilder pb = new ProcessBuilder(QsupdProcess.withSighup(List.of(
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", System.getProperty("java.class.path"), QsupdMain.class.getName(),
                    "--config", fx.settingsFile.toString(), "--hook", hook.toString())))
                    .redirectErrorStream(true).redirectOutput(fx.base.resolve("qsupd.log").toFile());
            pb.environment().put("NOTIFY_SOCKET", notify.toString());
            qsupd = pb.start();
            DatagramPacket p = new DatagramPacket(new byte[1024], 1024);
            systemd.receive(p);
            String msg = new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8);
            assertThat(msg).startsWith("READY=1\n").contains("MAINPID=" + qsupd.pid());
        }
        // READY comes after autostart, so the VM is already up
        awaitLine("one starting running");

        Files.writeString(fx.base.resolve("vms/two.yaml"), "memory: 32M\n");
        Process hup = new ProcessBuilder("kill", "-HUP", Long.toString(qsupd.pid())).start();
        assertThat(hup.waitFor(10, TimeUnit.SECONDS)).isTrue();
        awaitLine("two starting running");

        qsupd.destroy(); // SIGTERM
        assertThat(qsupd.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(qsupd.exitValue()).isZero();
        ProcessInspector inspector = new ProcessInspector();
        for (String vm : List.of("one", "two")) {
            long pid = ProcessInspector.readPidFile(fx.pidFile(vm)).orElseThrow();
            assertThat(inspector.isAlive(pid)).as("VM %s after qsupd got SIGTERM", vm).isTrue();
        }
        assertThat(Files.readAllLines(hookLog)).noneMatch(l -> l.contains("stopping"));
    }

    @Test
    void reloadOptionReturnsOnceTheDefinitionsAreAppliedAndFailsNamingABrokenFile() throws Exception {
        Files.writeString(fx.base.resolve("vms/one.yaml"), "memory: 32M\n");
        QsupdProcess daemon = QsupdProcess.start(fx.settingsFile, fx.base.resolve("qsupd.log"));
        qsupd = daemon.process();
        daemon.awaitLog("qsupd ready", Duration.ofSeconds(60));
        long onePid = awaitPid("one");

        Files.writeString(fx.base.resolve("vms/two.yaml"), "memory: 32M\n");
        Reload ok = reload();
        assertThat(ok.exit).as(ok.output).isZero();
        assertThat(ok.output).contains("added:   two");
        // it returned after the reload: qsupd knows two already, with no wait
        Path socket = fx.base.resolve("run/qsupd.sock");
        Command.Result status = Command.run(Duration.ofSeconds(60), List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), io.qsup.cli.QsupMain.class.getName(), "--socket",
                socket.toString(), "status", "two"));
        assertThat(status.exit()).as(status.output()).isZero();
        assertThat(status.output()).contains("two");

        Files.writeString(fx.base.resolve("vms/bad.yaml"), "memory: 32M\nmemroy: 64M\n");
        Reload broken = reload();
        assertThat(broken.exit).as(broken.output).isEqualTo(1);
        assertThat(broken.output).contains(fx.base.resolve("vms/bad.yaml") + ":2:1: memroy: unknown key");
        assertThat(qsupd.isAlive()).as("qsupd after a broken reload").isTrue();
        assertThat(ProcessInspector.readPidFile(fx.pidFile("one")).orElseThrow()).as("one's QEMU").isEqualTo(onePid);
        assertThat(new ProcessInspector().isAlive(onePid)).isTrue();
    }

    private record Reload(int exit, String output) {}

    private Reload reload() throws Exception {
        Path out = Files.createTempFile(fx.base, "reload", ".out");
        QsupdProcess r = QsupdProcess.start(fx.settingsFile, out, "--reload");
        assertThat(r.process().waitFor(60, TimeUnit.SECONDS)).as("qsupd --reload ended").isTrue();
        return new Reload(r.process().exitValue(), Files.readString(out));
    }

    private long awaitPid(String vm) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            java.util.OptionalLong pid = ProcessInspector.readPidFile(fx.pidFile(vm));
            if (pid.isPresent()) {
                return pid.getAsLong();
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no pid file of " + vm + "; qsupd log:\n"
                        + Files.readString(fx.base.resolve("qsupd.log")));
            }
            Thread.sleep(100);
        }
    }

    private void awaitLine(String line) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!(Files.exists(hookLog) && Files.readAllLines(hookLog).contains(line))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("hook never saw '" + line + "'; qsupd log:\n"
                        + Files.readString(fx.base.resolve("qsupd.log")));
            }
            Thread.sleep(100);
        }
    }
}

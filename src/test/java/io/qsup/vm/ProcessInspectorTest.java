package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcessInspectorTest {
    private final ProcessInspector inspector = new ProcessInspector();
    private Process child;

    @AfterEach
    void killChild() throws Exception {
        if (child != null) {
            child.destroyForcibly();
            child.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void seesARealProcessItsArgvAndSignals() throws Exception {
        child = new ProcessBuilder("sleep", "600").start();
        long pid = child.pid();
        assertThat(inspector.isAlive(pid)).isTrue();
        assertThat(inspector.cmdline(pid)).containsExactly("sleep", "600");

        assertThat(inspector.signal(pid, ProcessInspector.Signal.STOP)).isTrue();
        assertThat(awaitState(pid, 'T')).as("stopped by SIGSTOP").isTrue();
        inspector.signal(pid, ProcessInspector.Signal.CONT);
        assertThat(awaitState(pid, 'S')).as("sleeping again after SIGCONT").isTrue();

        assertThat(inspector.signal(pid, ProcessInspector.Signal.KILL)).isTrue();
        assertThat(inspector.awaitDeath(pid, Duration.ofSeconds(10), 20)).isTrue();
        assertThat(inspector.stat(pid).map(ProcStat::isDead).orElse(true))
                .as("gone, or a zombie the JDK has not reaped yet").isTrue();
        assertThat(inspector.signal(pid, ProcessInspector.Signal.TERM)).as("no signal to a dead process").isFalse();
    }

    @Test
    void oneScanServesManyLookupsAndEachMatchIsCheckedAliveWhenLookedUp(@TempDir Path dir) throws Exception {
        Path sock = dir.resolve("a/qmp.sock");
        Path pidFile = dir.resolve("a/qemu.pid");
        ProcessInspector.Scan before = inspector.scan();
        // a process whose argv carries VM a's markers, as a QEMU's does: a shell waiting in its builtin read on the
        // pipe the JVM holds open, which never forks (a loop around sleep did: each fork carried the markers for a
        // moment, and a scan then saw two)
        child = new ProcessBuilder("sh", "-c", "read line", "qemu-system-x86_64", "-name",
                "guest=a", "-qmp", "unix:" + sock + ",server=on,wait=off", "-pidfile", pidFile.toString()).start();
        long pid = child.pid();
        ProcessInspector.Scan after = inspector.scan();

        assertThat(inspector.findInstances(before, "a", pidFile, sock).isEmpty())
                .as("a scan ages: a process started after it is not in it").isTrue();
        ProcessInspector.Instances found = inspector.findInstances(after, "a", pidFile, sock);
        assertThat(found.starting()).as("holds no listening QMP socket").containsExactly(pid);
        assertThat(found.serving()).isEmpty();
        assertThat(inspector.findInstances("a", pidFile, sock)).as("the same as a fresh pass").isEqualTo(found);
        assertThat(inspector.findInstances(after, "b", dir.resolve("b/qemu.pid"), dir.resolve("b/qmp.sock"))
                .isEmpty()).as("another VM's markers").isTrue();

        child.destroyForcibly();
        child.waitFor(10, TimeUnit.SECONDS);
        assertThat(inspector.findInstances(after, "a", pidFile, sock).isEmpty())
                .as("a process of the scan that has ended since is not found").isTrue();
    }

    @Test
    void aScanOnFirstUseIsMadeWhenFirstAskedForAndThenShared(@TempDir Path dir) throws Exception {
        Path sock = dir.resolve("a/qmp.sock");
        Path pidFile = dir.resolve("a/qemu.pid");
        java.util.function.Supplier<ProcessInspector.Scan> shared = inspector.scanOnFirstUse();
        child = new ProcessBuilder("sh", "-c", "read line", "qemu-system-x86_64", "-name",
                "guest=a", "-qmp", "unix:" + sock + ",server=on,wait=off", "-pidfile", pidFile.toString()).start();
        ProcessInspector.Scan first = shared.get();
        assertThat(inspector.findInstances(first, "a", pidFile, sock).starting())
                .as("made at the first get, after the process started").containsExactly(child.pid());
        assertThat(shared.get()).as("the same scan for every later caller").isSameAs(first);
    }

    @Test
    void missingProcessIsNotAlive() {
        assertThat(inspector.isAlive(Integer.MAX_VALUE - 7)).isFalse();
        assertThat(inspector.cmdline(Integer.MAX_VALUE - 7)).isEmpty();
    }

    @Test
    void pidFileReading(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("qemu.pid");
        assertThat(ProcessInspector.readPidFile(f)).isEmpty();
        Files.writeString(f, "1234\n");
        assertThat(ProcessInspector.readPidFile(f)).hasValue(1234);
        Files.writeString(f, "garbage");
        assertThatThrownBy(() -> ProcessInspector.readPidFile(f))
                .hasMessageContaining(f.toString()).hasMessageContaining("garbage");
    }

    private boolean awaitState(long pid, char state) throws InterruptedException {
        for (int i = 0; i < 250; i++) {
            if (inspector.stat(pid).map(s -> s.state() == state).orElse(false)) {
                return true;
            }
            Thread.sleep(20);
        }
        return false;
    }
}

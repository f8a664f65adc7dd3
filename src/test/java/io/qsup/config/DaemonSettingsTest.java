package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Daemon settings: defaults per DESIGN.md, relative paths against the file's folder, every error reported. */
class DaemonSettingsTest {
    @TempDir Path dir;

    @Test
    void defaultsAreThoseOfAPackagedInstall() {
        DaemonSettings d = DaemonSettings.defaults();
        assertThat(d.vmsDir()).isEqualTo(Path.of("/etc/qsup/vms"));
        assertThat(d.controlSocket()).isEqualTo(Path.of("/run/qsup/qsupd.sock"));
        assertThat(d.controlGroup()).isEqualTo("qsup");
        assertThat(d.runDir()).isEqualTo(Path.of("/run/qsup"));
        assertThat(d.stateDir()).isEqualTo(Path.of("/var/lib/qsup"));
        assertThat(d.logDir()).isEqualTo(Path.of("/var/log/qsup"));
        assertThat(d.qemuBinary()).isEqualTo("qemu-system-x86_64");
        assertThat(d.accel()).isEqualTo(Accel.KVM);
        assertThat(d.maxParallelStarts()).isEqualTo(2 * Runtime.getRuntime().availableProcessors());
        assertThat(d.logLevel()).isEqualTo("info");
    }

    @Test
    void relativePathsResolveAgainstTheSettingsFilesFolder() throws Exception {
        Path etc = Files.createDirectories(dir.resolve("etc"));
        Path f = etc.resolve("qsupd.yaml");
        Files.writeString(f, "vms-dir: vms\nrun-dir: ../run\nlog-dir: /var/log/other\nqemu-binary: ../bin/qemu\n"
                + "accel: tcg\nmax-parallel-starts: 3\nlog-level: debug\ncontrol-group: wheel\n");
        DaemonSettings s = DaemonSettings.load(f);
        assertThat(s.vmsDir()).isEqualTo(etc.resolve("vms"));
        assertThat(s.runDir()).isEqualTo(dir.resolve("run"));
        assertThat(s.logDir()).isEqualTo(Path.of("/var/log/other"));
        assertThat(s.stateDir()).isEqualTo(Path.of("/var/lib/qsup"));
        assertThat(s.qemuBinary()).isEqualTo(dir.resolve("bin/qemu").toString());
        assertThat(s.accel()).isEqualTo(Accel.TCG);
        assertThat(s.maxParallelStarts()).isEqualTo(3);
        assertThat(s.logLevel()).isEqualTo("debug");
        assertThat(s.controlGroup()).isEqualTo("wheel");
        assertThat(s.sourceFile()).isEqualTo(f);
    }

    @Test
    void pathsForAVmFollowTheDesignLayout() {
        VmPaths p = DaemonSettings.defaults().pathsFor("web");
        assertThat(p.qmpSocket()).isEqualTo(Path.of("/run/qsup/vms/web/qmp.sock"));
        assertThat(p.pidFile()).isEqualTo(Path.of("/run/qsup/vms/web/qemu.pid"));
        assertThat(p.consoleSocket()).isEqualTo(Path.of("/run/qsup/vms/web/console.sock"));
        assertThat(p.qemuLog()).isEqualTo(Path.of("/var/log/qsup/web/qemu.log"));
        assertThat(p.serialLog()).isEqualTo(Path.of("/var/log/qsup/web/serial.log"));
        assertThat(p.efiVars()).isEqualTo(Path.of("/var/lib/qsup/vms/web/efivars.fd"));
    }

    @Test
    void everyProblemIsReportedAtOnce() throws Exception {
        Path f = dir.resolve("qsupd.yaml");
        Files.writeString(f, "vms_dir: x\naccel: fast\nlog-level: verbose\nmax-parallel-starts: many\n");
        assertThatThrownBy(() -> DaemonSettings.load(f))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).extracting(ConfigError::format)
                        .containsExactly(
                                f + ":1:1: vms_dir: unknown key; did you mean 'vms-dir'?",
                                f + ":2:8: accel: 'fast' is not one of kvm, tcg, auto",
                                f + ":3:12: log-level: 'verbose' is not one of debug, error, info, trace, warn",
                                f + ":4:22: max-parallel-starts: expected a whole number, got the string 'many'"));
    }

    @Test
    void controlMaxConnectionsDefaultsTo128AndIsValidatedLikeTheOtherSettings() throws Exception {
        assertThat(DaemonSettings.defaults().controlMaxConnections()).isEqualTo(128);
        Path f = dir.resolve("qsupd.yaml");
        Files.writeString(f, "control-max-connections: 5\n");
        assertThat(DaemonSettings.load(f).controlMaxConnections()).isEqualTo(5);
        Files.writeString(f, "control-max-connections: 0\nlog-level: info\ncontrol-max-conections: 3\n");
        assertThatThrownBy(() -> DaemonSettings.load(f))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).extracting(ConfigError::format)
                        .containsExactly(
                                f + ":1:26: control-max-connections: must be a whole number from 1 to 4096, got 0",
                                f + ":3:1: control-max-conections: unknown key;"
                                        + " did you mean 'control-max-connections'?"));
    }

    @Test
    void shutdownParallelDefaultsToTheCoresAndShutdownTimeoutTo3mBothValidated() throws Exception {
        assertThat(DaemonSettings.defaults().shutdownParallel()).isEqualTo(Runtime.getRuntime().availableProcessors());
        assertThat(DaemonSettings.defaults().shutdownTimeout()).isEqualTo(java.time.Duration.ofMinutes(3));
        Path f = dir.resolve("qsupd.yaml");
        Files.writeString(f, "shutdown-parallel: 2\nshutdown-timeout: 90s\n");
        DaemonSettings s = DaemonSettings.load(f);
        assertThat(s.shutdownParallel()).isEqualTo(2);
        assertThat(s.shutdownTimeout()).isEqualTo(java.time.Duration.ofSeconds(90));
        Files.writeString(f, "shutdown-parallel: 0\nshutdown-timeout: 0s\n");
        assertThatThrownBy(() -> DaemonSettings.load(f))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).extracting(ConfigError::format)
                        .containsExactly(
                                f + ":1:20: shutdown-parallel: must be a whole number from 1 to 1024, got 0",
                                f + ":2:19: shutdown-timeout: must be longer than 0s; give the whole time host"
                                        + " shutdown may take, such as 3m"));
    }

    @Test
    void metricsListenDefaultsToLoopbackOn9612AndTakesHostPortOrOff() throws Exception {
        assertThat(DaemonSettings.defaults().metricsListen()).isEqualTo(new DaemonSettings.MetricsListen("127.0.0.1", 9612));
        Path f = dir.resolve("qsupd.yaml");
        Files.writeString(f, "log-level: info\n");
        assertThat(DaemonSettings.load(f).metricsListen().toString()).isEqualTo("127.0.0.1:9612");
        Files.writeString(f, "metrics-listen: 0.0.0.0:9100\n");
        assertThat(DaemonSettings.load(f).metricsListen()).isEqualTo(new DaemonSettings.MetricsListen("0.0.0.0", 9100));
        Files.writeString(f, "metrics-listen: \"[::1]:9612\"\n");
        assertThat(DaemonSettings.load(f).metricsListen()).isEqualTo(new DaemonSettings.MetricsListen("::1", 9612));
        assertThat(DaemonSettings.load(f).metricsListen().toString()).isEqualTo("[::1]:9612");
        Files.writeString(f, "metrics-listen: off\n");
        assertThat(DaemonSettings.load(f).metricsListen()).isNull();
        Files.writeString(f, "metrics-listen: \"off\"\n");
        assertThat(DaemonSettings.load(f).metricsListen()).isNull();
    }

    @Test
    void aBadMetricsListenNamesTheLineAndSaysWhatIsAllowed() throws Exception {
        Path f = dir.resolve("qsupd.yaml");
        Files.writeString(f, "log-level: info\nmetrics-listen: localhost\n");
        assertThatThrownBy(() -> DaemonSettings.load(f))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).extracting(ConfigError::format)
                        .containsExactly(f + ":2:17: metrics-listen: 'localhost' is not HOST:PORT with a port from 1 to"
                                + " 65535 (for example 127.0.0.1:9612 or [::1]:9612), nor off"));
        Files.writeString(f, "metrics-listen: 127.0.0.1:70000\n");
        assertThatThrownBy(() -> DaemonSettings.load(f)).hasMessageContaining("metrics-listen")
                .hasMessageContaining("'127.0.0.1:70000' is not HOST:PORT");
    }

    @Test
    void aMissingFileSaysWhatToDo() {
        assertThatThrownBy(() -> DaemonSettings.load(dir.resolve("nope.yaml")))
                .hasMessageContaining("cannot read settings file").hasMessageContaining("--config");
    }

    @Test
    @org.junit.jupiter.api.Timeout(20)
    void aSettingsFileThatIsAFifoOrDevZeroIsRefusedAtOnceNotReadForever() throws Exception {
        Path fifo = dir.resolve("fifo.yaml");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertThat(mk.waitFor()).isZero();
        assertThatThrownBy(() -> DaemonSettings.load(fifo)).hasMessageContaining("cannot read settings file")
                .hasMessageContaining("not a regular file");
        Path zero = dir.resolve("zero.yaml");
        Files.createSymbolicLink(zero, Path.of("/dev/zero"));
        assertThatThrownBy(() -> DaemonSettings.load(zero)).hasMessageContaining("/dev/zero")
                .hasMessageContaining("not a regular file");
    }
}

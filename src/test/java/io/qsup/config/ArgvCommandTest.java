package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.cli.ExitCodes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qsup argv}: the command line one argument per line, or one line a POSIX shell splits back exactly. */
class ArgvCommandTest {
    @TempDir Path dir;

    private Path settings() throws Exception {
        Path s = dir.resolve("qsupd.yaml");
        Files.writeString(s, "vms-dir: vms\nrun-dir: run\nstate-dir: state\nlog-dir: log\ncontrol-socket: run/q.sock\n"
                + "accel: auto\nqemu-binary: qemu-system-x86_64\n");
        Files.createDirectories(dir.resolve("vms"));
        return s;
    }

    @Test
    void printsOneArgumentPerLineForAVmName() throws Exception {
        Path s = settings();
        Files.writeString(dir.resolve("vms/web.yaml"), "memory: 256M\n");
        CliRun r = CliRun.of("argv", "web", "--config", s.toString());
        List<String> lines = r.out().lines().toList();
        assertThat(lines.get(0)).isEqualTo("qemu-system-x86_64");
        assertThat(lines).containsSequence("-name", "guest=web");
        assertThat(lines).containsSequence("-m", "256M");
        assertThat(lines).contains("-daemonize");
        assertThat(r.exit()).isEqualTo(ExitCodes.OK);
    }

    @Test
    void foregroundLeavesOutDaemonize() throws Exception {
        Path s = settings();
        Files.writeString(dir.resolve("vms/web.yaml"), "memory: 256M\n");
        CliRun r = CliRun.of("argv", "web", "--foreground", "--config", s.toString());
        assertThat(r.out().lines().toList()).doesNotContain("-daemonize").contains("-pidfile");
    }

    @Test
    void shellLineSplitsBackIntoTheSameArgumentsInARealShell() throws Exception {
        Path s = settings();
        Path weird = dir.resolve("it's a,b c");
        Files.createDirectories(weird);
        Files.write(weird.resolve("ü $HOME `x`.qcow2"), new byte[0]);
        Path def = dir.resolve("odd.yaml");
        Files.writeString(def, "disks:\n  - file: \"" + weird.resolve("ü $HOME `x`.qcow2") + "\"\n"
                + "kernel: \"" + weird.resolve("ü $HOME `x`.qcow2") + "\"\nappend: \"a='b c' \\\"d\\\" ; rm -rf /\"\n");
        CliRun lines = CliRun.of("argv", def.toString(), "--config", s.toString());
        assertThat(lines.exit()).as(lines.err()).isEqualTo(ExitCodes.OK);
        CliRun shell = CliRun.of("argv", def.toString(), "--config", s.toString(), "--shell");
        assertThat(shell.out().lines().count()).isEqualTo(1);

        Process sh = new ProcessBuilder("sh", "-c", "eval \"set -- $1\"; printf '%s\\n' \"$@\"", "sh", shell.out().strip())
                .redirectErrorStream(true).start();
        String split = new String(sh.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(sh.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(split).isEqualTo(lines.out());
        assertThat(lines.out().lines().toList()).contains("a='b c' \"d\" ; rm -rf /");
    }

    @Test
    void anUnknownNameIsNotFound() throws Exception {
        CliRun r = CliRun.of("argv", "nosuchvm", "--config", settings().toString());
        assertThat(r.err()).contains("no VM named 'nosuchvm'");
        assertThat(r.exit()).isEqualTo(ExitCodes.NOT_FOUND);
    }

    @Test
    void anInvalidDefinitionPrintsItsErrors() throws Exception {
        Path s = settings();
        Files.writeString(dir.resolve("vms/bad.yaml"), "memory: huge\n");
        CliRun r = CliRun.of("argv", "bad", "--config", s.toString());
        assertThat(r.err()).contains("bad.yaml:1:9: memory: expected a size such as 512M or 2G, got 'huge'");
        assertThat(r.out()).isEmpty();
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);
    }
}

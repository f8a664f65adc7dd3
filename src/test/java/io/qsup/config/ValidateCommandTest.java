package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.cli.ExitCodes;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qsup validate}: offline, every problem printed with its place, {@code ok: N VMs}, exit code 1 on errors. */
class ValidateCommandTest {
    @TempDir Path dir;

    private Path settings() throws Exception {
        Path s = dir.resolve("qsupd.yaml");
        Files.writeString(s, "vms-dir: vms\nrun-dir: run\nstate-dir: state\nlog-dir: log\ncontrol-socket: run/q.sock\naccel: auto\n");
        Files.createDirectories(dir.resolve("vms"));
        return s;
    }

    @Test
    void validFolderFromTheSettingsPrintsOkWithTheCount() throws Exception {
        Path s = settings();
        Files.writeString(dir.resolve("vms/web.yaml"), "memory: 256M\n");
        Files.writeString(dir.resolve("vms/db.yaml"), "memory: 1G\ncpus: 2\n");
        CliRun r = CliRun.of("validate", "--config", s.toString());
        assertThat(r.out()).isEqualTo("ok: 2 VMs\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.OK);
    }

    @Test
    void everyProblemIsPrintedWithFileLineColumnAndKeyAndTheExitCodeIsNonzero() throws Exception {
        Path s = settings();
        Files.writeString(dir.resolve("vms/web.yaml"), "memory: 256M\ncpus: lots\ndisks:\n  - file: missing.qcow2\n");
        Files.writeString(dir.resolve("vms/db.yaml"), "memroy: 1G\n");
        Files.writeString(dir.resolve("vms/ok.yaml"), "memory: 1G\n");
        CliRun r = CliRun.of("validate", "--config", s.toString());
        Path vms = dir.resolve("vms").toAbsolutePath();
        assertThat(r.out()).contains(
                vms.resolve("db.yaml") + ":1:1: memroy: unknown key; did you mean 'memory'?",
                vms.resolve("web.yaml") + ":2:7: cpus: expected a whole number, got the string 'lots'",
                vms.resolve("web.yaml") + ":4:11: disks[0].file: file " + vms.resolve("missing.qcow2") + " does not exist");
        assertThat(r.out()).endsWith("3 errors in 2 files; 1 VM is valid\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);
    }

    @Test
    void aSingleFileIsValidatedAndItsWarningsShown() throws Exception {
        Path s = settings();
        Path f = dir.resolve("one.yaml");
        Files.writeString(f, "extra-args: [-no-reboot]\n");
        CliRun r = CliRun.of("validate", "--config", s.toString(), f.toString());
        assertThat(r.out()).contains("warning: " + f.toAbsolutePath() + ":1:1: extra-args: passed to QEMU as given");
        assertThat(r.out()).endsWith("ok: 1 VM\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.OK);
    }

    @Test
    void brokenSettingsAreReportedWithTheirLine() throws Exception {
        Path s = dir.resolve("bad.yaml");
        Files.writeString(s, "vms-dir: vms\nacel: tcg\nmax-parallel-starts: 0\n");
        CliRun r = CliRun.of("validate", "--config", s.toString());
        assertThat(r.out()).contains(s.toAbsolutePath() + ":2:1: acel: unknown key; did you mean 'accel'?",
                s.toAbsolutePath() + ":3:22: max-parallel-starts: must be a whole number from 1 to 1024, got 0");
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);
    }

    @Test
    void aMissingTargetIsNotFound() throws Exception {
        CliRun r = CliRun.of("validate", "--config", settings().toString(), dir.resolve("nope").toString());
        assertThat(r.err()).contains("nope does not exist");
        assertThat(r.exit()).isEqualTo(ExitCodes.NOT_FOUND);
    }
}

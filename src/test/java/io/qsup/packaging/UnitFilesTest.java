package io.qsup.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped systemd units pass {@code systemd-analyze verify} with no warning at all. verify checks that every
 * Exec path exists, so the test points /usr/sbin/qsupd at the checkout's own launcher; nothing else is changed. The
 * man pages named by Documentation= exist only once the package is installed: PackageInstallTest verifies the
 * installed units with them.
 */
class UnitFilesTest {
    static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));
    static final List<String> UNITS = List.of("qsupd.service", "qsup-shutdown.service");

    @TempDir
    Path tmp;

    @Test
    void bothUnitsVerifyWithoutWarnings() throws Exception {
        Result r = verify(installUnits(tmp, ""));
        assertThat(r.output).as("systemd-analyze verify output").isEmpty();
        assertThat(r.exit).as("systemd-analyze verify exit status; output:%n%s", r.output).isZero();
    }

    @Test
    void verifyReportsAMistypedDirective() throws Exception {
        // The check above is only worth something if verify speaks up on a bad unit.
        Result r = verify(installUnits(tmp, "KillMod=process\n"));
        assertThat(r.output).contains("Unknown key 'KillMod' in section [Service]");
    }

    @Test
    void theDaemonUnitKeepsVmsAcrossRestartsAndReloadsThroughTheControlSocket() throws IOException {
        String unit = Files.readString(PROJECT.resolve("systemd/qsupd.service"));
        assertThat(directives(unit)).contains("Type=notify", "KillMode=process", "Restart=on-failure",
                "RuntimeDirectory=qsup", "RuntimeDirectoryPreserve=yes", "StateDirectory=qsup", "LogsDirectory=qsup",
                "ConfigurationDirectory=qsup", "ExecReload=/usr/sbin/qsupd --config /etc/qsup/qsupd.yaml --reload", "ProtectSystem=full",
                "ProtectHome=read-only", "PrivateTmp=yes", "LimitNOFILE=65536", "TasksMax=65536");
    }

    /** Copies the units into {@code dir}, with {@code extra} appended to the [Service] of qsupd.service. */
    private static List<Path> installUnits(Path dir, String extra) throws IOException {
        Path launcher = dir.resolve("sbin/qsupd");
        Files.createDirectories(launcher.getParent());
        Files.copy(PROJECT.resolve("bin/qsupd"), launcher);
        assertThat(launcher.toFile().setExecutable(true)).isTrue();
        List<Path> out = new ArrayList<>();
        for (String name : UNITS) {
            String text = Files.readString(PROJECT.resolve("systemd").resolve(name))
                    .replace("/usr/sbin/qsupd", launcher.toString());
            if (name.equals("qsupd.service")) {
                text = text.replace("[Install]", extra + "[Install]");
            }
            Path unit = dir.resolve(name);
            Files.writeString(unit, text);
            out.add(unit);
        }
        return out;
    }

    private static List<String> directives(String unit) {
        return unit.lines().map(String::strip).filter(l -> !l.startsWith("#") && l.contains("=")).toList();
    }

    record Result(int exit, String output) {}

    private static Result verify(List<Path> units) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("systemd-analyze", "verify", "--man=no"));
        units.forEach(u -> cmd.add(u.toString()));
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new AssertionError("systemd-analyze not found; install the systemd package (scripts/setup does)", e);
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new Result(p.exitValue(), out);
    }
}

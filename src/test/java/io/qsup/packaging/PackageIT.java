package io.qsup.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The .deb that {@code mvn -Pdeb package} builds: its layout and control data, then (as root) a real install on this
 * machine, the commands from /usr/bin and /usr/sbin, the man pages, the installed units under systemd-analyze, remove
 * and purge. It leaves the machine as it found it: the package purged, and the group and folders it created gone.
 */
class PackageIT {
    static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));

    static Path deb() throws IOException {
        try (Stream<Path> s = Files.list(PROJECT.resolve("target"))) {
            List<Path> debs = s.filter(p -> p.getFileName().toString().matches("qsup_.*_all\\.deb")).toList();
            assertThat(debs).as("one qsup_VERSION_all.deb in target/ (build it with mvn -Pdeb package)").hasSize(1);
            return debs.get(0);
        }
    }

    @Test
    void layoutHoldsTheJarCommandsUnitsConffileCompletionAndManPages() throws Exception {
        String contents = run("dpkg-deb", "-c", deb().toString()).out;
        List<String> paths = contents.lines().map(l -> l.substring(l.indexOf("./") + 1)).toList();
        assertThat(paths).contains("/usr/share/qsup/qsup.jar", "/usr/bin/qsup", "/usr/sbin/qsupd",
                "/usr/lib/systemd/system/qsupd.service", "/usr/lib/systemd/system/qsup-shutdown.service",
                "/usr/lib/tmpfiles.d/qsup.conf", "/usr/lib/sysusers.d/qsup.conf", "/etc/qsup/qsupd.yaml",
                "/etc/qsup/vms/", "/usr/share/bash-completion/completions/qsup", "/usr/share/man/man1/qsup.1",
                "/usr/share/man/man1/qsup-start.1", "/usr/share/man/man8/qsupd.8");
        assertThat(contents).containsPattern("-rwxr-xr-x root/root .* \\./usr/bin/qsup\\n")
                .containsPattern("-rwxr-xr-x root/root .* \\./usr/sbin/qsupd\\n");

        String info = run("dpkg-deb", "-I", deb().toString()).out;
        assertThat(field(info, "Package")).isEqualTo("qsup");
        assertThat(field(info, "Architecture")).isEqualTo("all");
        assertThat(field(info, "Depends")).contains("qemu-system-x86 | qemu-system-x86-64",
                "openjdk-21-jre-headless | java21-runtime-headless");
        assertThat(info).contains("postinst", "prerm", "postrm", "conffiles");
        assertThat(run("dpkg-deb", "-f", deb().toString(), "Version").out.strip()).startsWith("0.");
        String conffiles = run("sh", "-c", "dpkg-deb --ctrl-tarfile " + deb() + " | tar -xOf - ./conffiles").out;
        assertThat(conffiles.strip()).isEqualTo("/etc/qsup/qsupd.yaml");
    }

    @Test
    void installsRunsFromUsrBinAndUsrSbinThenRemovesAndPurgesCleanly() throws Exception {
        boolean root = "root".equals(System.getProperty("user.name"));
        if (System.getenv("CI") != null) {
            assertThat(root).as("CI runs as root, and this test installs the package").isTrue();
        }
        Assumptions.assumeTrue(root, "installing a .deb needs root");
        assertThat(run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "qsup").out.strip())
                .as("qsup must not be installed on this machine before the test").isNotIn("ii", "rc", "iU", "iF");
        for (String d : List.of("/etc/qsup", "/var/lib/qsup", "/var/log/qsup")) {
            assertThat(Path.of(d)).as("%s already exists: this test would purge it; move it away first", d)
                    .doesNotExist();
        }
        boolean hadGroup = run("getent", "group", "qsup").exit == 0;
        boolean hadRunDir = Files.exists(Path.of("/run/qsup"));
        try {
            install();
            assertThat(run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "qsup").out.strip()).isEqualTo("ii");
            assertThat(run("dpkg-query", "-W", "-f=${Conffiles}", "qsup").out).contains("/etc/qsup/qsupd.yaml");
            assertThat(run("getent", "group", "qsup").exit).as("sysusers created group qsup").isZero();
            assertThat(Path.of("/etc/qsup/vms")).isDirectory();

            // The launcher finds a Java 21+ by itself: no JAVA_HOME, and the PATH's java may be older.
            String version = run("dpkg-deb", "-f", deb().toString(), "Version").out.strip().replace('~', '-');
            Result qsup = runClean("/usr/bin/qsup", "--version");
            assertThat(qsup.out.strip()).as("stderr: %s", qsup.err).isEqualTo("qsup " + version);
            Result qsupd = runClean("/usr/sbin/qsupd", "--version");
            assertThat(qsupd.out.strip()).as("stderr: %s", qsupd.err).isEqualTo("qsupd " + version);

            Result man1 = runClean("man", "-l", "/usr/share/man/man1/qsup.1");
            assertThat(man1.out).contains("QSUP(1)", "NAME", "SYNOPSIS", "COMMANDS", "validate");
            assertThat(man1.err).isEmpty();
            Result man8 = runClean("man", "-l", "/usr/share/man/man8/qsupd.8");
            assertThat(man8.out).contains("QSUPD(8)", "--shutdown-all", "--config=FILE");
            assertThat(man8.err).isEmpty();
            assertThat(runClean("man", "-w", "8", "qsupd").out.strip()).startsWith("/usr/share/man/man8/qsupd.8");

            // The installed units, as they are, with their Documentation= man pages now present.
            Result verify = run("systemd-analyze", "verify", "/usr/lib/systemd/system/qsupd.service",
                    "/usr/lib/systemd/system/qsup-shutdown.service");
            assertThat(verify.out + verify.err).isEmpty();
            assertThat(verify.exit).isZero();

            // Remove keeps the settings; purge takes them.
            assertThat(run("dpkg", "--remove", "qsup").exit).isZero();
            assertThat(Path.of("/usr/sbin/qsupd")).doesNotExist();
            assertThat(Path.of("/etc/qsup/qsupd.yaml")).exists();
            assertThat(run("dpkg", "--purge", "qsup").exit).isZero();
            assertThat(Path.of("/etc/qsup")).doesNotExist();
            assertThat(Path.of("/var/lib/qsup")).doesNotExist();
            assertThat(Path.of("/var/log/qsup")).doesNotExist();
            assertThat(Path.of("/etc/systemd/system/multi-user.target.wants/qsupd.service")).doesNotExist();
        } finally {
            run("dpkg", "--purge", "qsup");
            run("rm", "-rf", "/etc/qsup", "/var/lib/qsup", "/var/log/qsup");
            if (!hadRunDir) {
                run("rm", "-rf", "/run/qsup");
            }
            if (!hadGroup) {
                run("groupdel", "qsup");
            }
        }
    }

    /**
     * apt-get installs the .deb with its dependencies where the machine's sources can satisfy them. Debian 12 packages
     * no Java 21 (its newest is 17), and a JDK installed outside dpkg satisfies no Depends: there the test installs
     * with dpkg, ignoring that one dependency only after apt-get's simulation says it is the only one unmet.
     */
    private static void install() throws Exception {
        Path debPath = deb().toAbsolutePath();
        Result sim = run("apt-get", "install", "--simulate", "-q", debPath.toString());
        if (sim.exit == 0) {
            Result r = run(Map.of("DEBIAN_FRONTEND", "noninteractive"), "apt-get", "install", "-y", "-q",
                    "--no-install-recommends", debPath.toString());
            assertThat(r.exit).as("apt-get install: %s%s", r.out, r.err).isZero();
            return;
        }
        List<String> unmet = (sim.out + sim.err).lines().filter(l -> l.contains("Depends:")).toList();
        assertThat(unmet).as("apt-get --simulate: %s%s", sim.out, sim.err).hasSize(1);
        assertThat(unmet.get(0)).contains("openjdk-21-jre-headless");
        Result r = run("dpkg", "--force-depends", "-i", debPath.toString());
        assertThat(r.exit).as("dpkg -i: %s%s", r.out, r.err).isZero();
    }

    private static String field(String info, String name) {
        return info.lines().map(String::strip).filter(l -> l.startsWith(name + ": ")).findFirst()
                .map(l -> l.substring(name.length() + 2)).orElse(null);
    }

    record Result(int exit, String out, String err) {}

    /** Runs with no JAVA_HOME and a system PATH, as a login shell on the host would. */
    private static Result runClean(String... cmd) throws Exception {
        Map<String, String> env = new HashMap<>();
        env.put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        env.put("JAVA_HOME", null);
        env.put("MANPAGER", "cat");
        env.put("MANWIDTH", "100");
        return run(env, cmd);
    }

    private static Result run(String... cmd) throws Exception {
        return run(Map.of(), cmd);
    }

    private static Result run(Map<String, String> env, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(cmd)));
        env.forEach((k, v) -> {
            if (v == null) {
                pb.environment().remove(k);
            } else {
                pb.environment().put(k, v);
            }
        });
        Path err = Files.createTempFile("qsup-pkg", ".err");
        try {
            pb.redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("%s finished", String.join(" ", cmd)).isTrue();
            return new Result(p.exitValue(), out, Files.readString(err));
        } finally {
            Files.deleteIfExists(err);
        }
    }
}

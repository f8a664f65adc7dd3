package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * How bin/qsup picks its Java and its jar, run as the real script against stand-in JDKs whose {@code java} prints the
 * command line it was given: JAVA_HOME first, then the PATH's first java, each only when it is 21 or newer (by its
 * release file, or by asking {@code java -version} when it has none); the jar beside the launcher, or beside the file a
 * symlinked launcher points to; the role's flags and the start-up cache of that exact JDK build.
 */
class LauncherJavaTest {
    private static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));

    private Path dir;

    @BeforeEach
    void layout() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-launchjava");
        Files.createDirectories(dir.resolve("app/bin"));
        Files.createDirectories(dir.resolve("app/target"));
        Files.copy(PROJECT.resolve("bin/qsup"), dir.resolve("app/bin/qsup"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.createSymbolicLink(dir.resolve("app/bin/qsupd"), Path.of("qsup"));
        Files.writeString(dir.resolve("app/target/qsup.jar"), "not a jar: the stand-in java never opens it");
    }

    @AfterEach
    void cleanup() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }

    /** A JDK folder whose bin/java prints "ran PATH ARGS"; its release file says {@code version}, if not null. */
    private Path jdk(String name, String version, String runtime) throws IOException {
        Path home = dir.resolve(name);
        Files.createDirectories(home.resolve("bin"));
        Path java = home.resolve("bin/java");
        Files.writeString(java, """
                #!/bin/sh
                if [ "$1" = -version ]; then echo 'openjdk version "%s" 2025-01-21' >&2; exit 0; fi
                echo "ran $0 $*"
                """.formatted(version));
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (runtime != null) {
            Files.writeString(home.resolve("release"), "IMPLEMENTOR=\"Test\"\nJAVA_VERSION=\"" + version
                    + "\"\nJAVA_RUNTIME_VERSION=\"" + runtime + "\"\n");
        }
        return home;
    }

    private record Run(int code, String out, String err) {}

    private Run run(Path launcher, Map<String, String> env, String... args) throws Exception {
        List<String> argv = new java.util.ArrayList<>(List.of(launcher.toString()));
        argv.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().remove("JAVA_HOME");
        pb.environment().remove("QSUP_JAR");
        pb.environment().remove("QSUP_JAVA_OPTS");
        pb.environment().putAll(env);
        Path out = dir.resolve("out");
        Path err = dir.resolve("err");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
    }

    @Test
    void javaHomeOfJava21OrNewerIsUsedWithTheCliFlagsAndTheJar() throws Exception {
        Path jdk = jdk("jdk25", "25.0.3", "25.0.3+9-LTS");
        Run r = run(dir.resolve("app/bin/qsup"), Map.of("JAVA_HOME", jdk.toString()), "list", "--json");
        assertThat(r.code).isZero();
        assertThat(r.out).startsWith("ran " + jdk.resolve("bin/java") + " ")
                .contains("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
                .contains("-cp " + dir.resolve("app/bin/../target/qsup.jar") + " io.qsup.cli.QsupMain list --json\n")
                .doesNotContain("AOTCache");
    }

    @Test
    void anOlderJavaHomeIsPassedOverForThePathsJava() throws Exception {
        Path old = jdk("jdk17", "17.0.15", "17.0.15+6");
        Path jdk = jdk("jdk21", "21.0.7", "21.0.7+6-LTS");
        Run r = run(dir.resolve("app/bin/qsup"), Map.of("JAVA_HOME", old.toString(),
                "PATH", jdk.resolve("bin") + ":/usr/bin:/bin"), "--version");
        assertThat(r.code).isZero();
        assertThat(r.out).startsWith("ran " + jdk.resolve("bin/java") + " ");
    }

    @Test
    void aJdkWithoutAReleaseFileIsAskedItsVersion() throws Exception {
        Path jdk = jdk("norelease", "22.0.1", null);
        Run r = run(dir.resolve("app/bin/qsup"), Map.of("JAVA_HOME", jdk.toString()), "--version");
        assertThat(r.out).startsWith("ran " + jdk.resolve("bin/java") + " ");
    }

    @Test
    void theDaemonRoleGetsItsFlagsAndTheCacheOfItsExactJdkBuild() throws Exception {
        Path jdk = jdk("jdk25", "25.0.3", "25.0.3+9-LTS");
        Path cache = dir.resolve("app/target/qsup-daemon-25.0.3+9-LTS.aot");
        Files.writeString(cache, "stand-in");
        Files.writeString(dir.resolve("app/target/qsup-daemon-25.0.2+1-LTS.aot"), "another build's");
        Run r = run(dir.resolve("app/bin/qsupd"), Map.of("JAVA_HOME", jdk.toString()), "--config", "x.yaml");
        assertThat(r.code).isZero();
        assertThat(r.out).contains("-Xmx512m", "-XX:TrimNativeHeapInterval=5000")
                .contains("-XX:AOTCache=" + dir.resolve("app/bin/../target/qsup-daemon-25.0.3+9-LTS.aot"))
                .endsWith(" io.qsup.daemon.QsupdMain --config x.yaml\n");
    }

    @Test
    void aLauncherSymlinkedFromAnotherFolderFindsTheJarBesideItsTarget() throws Exception {
        Path jdk = jdk("jdk25", "25.0.3", "25.0.3+9-LTS");
        Files.createDirectories(dir.resolve("usr/bin"));
        Path link = Files.createSymbolicLink(dir.resolve("usr/bin/qsup"), dir.resolve("app/bin/qsup"));
        Run r = run(link, Map.of("JAVA_HOME", jdk.toString()), "--version");
        assertThat(r.code).isZero();
        assertThat(r.out).contains("-cp " + dir.resolve("app/bin/../target/qsup.jar") + " ");
    }

    @Test
    void aMissingJarIsReportedWithWhatToDo() throws Exception {
        Path jdk = jdk("jdk25", "25.0.3", "25.0.3+9-LTS");
        Files.delete(dir.resolve("app/target/qsup.jar"));
        Run r = run(dir.resolve("app/bin/qsup"), Map.of("JAVA_HOME", jdk.toString()), "--version");
        assertThat(r.code).isEqualTo(127);
        assertThat(r.err).contains("qsup: qsup.jar not found", "build it with 'mvn package'");
        assertThat(r.out).isEmpty();
    }
}

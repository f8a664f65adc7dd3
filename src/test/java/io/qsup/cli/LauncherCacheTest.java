package io.qsup.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.daemon.Version;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * bin/qsup with the start-up cache beside its jar: the cache is used when it was made by this JDK for this jar, and a
 * cache made for another JDK or another jar, or a damaged one, is ignored without a word: same output, exit code 0.
 */
class LauncherCacheTest {
    private static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));
    private static final String JDK = System.getProperty("java.runtime.version");
    private static final boolean AOT = Runtime.version().feature() >= 25;

    private static Path dir;
    private static Path jar;
    private static Path cache;
    private static byte[] goodCache;

    /** A layout as `mvn package` leaves it: bin/qsup, target/qsup.jar and the CLI's cache made from that jar. */
    @BeforeAll
    static void layout() throws Exception {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-launch");
        Files.createDirectories(dir.resolve("bin"));
        Files.createDirectories(dir.resolve("target"));
        Files.copy(PROJECT.resolve("bin/qsup"), dir.resolve("bin/qsup"), StandardCopyOption.COPY_ATTRIBUTES);
        jar = dir.resolve("target/qsup.jar");
        writeJar(jar);
        cache = dir.resolve("target/qsup-cli-" + JDK + (AOT ? ".aot" : ".jsa"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> train = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                AOT ? "-XX:AOTCacheOutput=" + cache : "-XX:ArchiveClassesAtExit=" + cache,
                "-cp", jar.toString(), "io.qsup.cli.QsupMain", "--version"));
        Process p = new ProcessBuilder(train).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
        goodCache = Files.readAllBytes(cache);
    }

    @AfterAll
    static void cleanup() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }

    @Test
    void aCacheMadeByThisJdkForThisJarIsUsed() throws Exception {
        Files.write(cache, goodCache);
        Run r = qsupVersion();
        assertThat(r.out).isEqualTo("qsup " + Version.get() + "\n");
        assertThat(r.err).isEmpty();
        assertThat(r.code).isZero();
        assertThat(r.appClassesFromCache).as("classes of the jar mapped from the cache").isGreaterThan(20);
    }

    @Test
    void aCacheMadeByAnotherJdkBuildIsIgnored() throws Exception {
        // The header names the JVM build that wrote it; another build's cache differs only there.
        byte[] other = goodCache.clone();
        byte[] ident = JDK.getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(other, ident);
        assertThat(at).as("the JDK version in the cache header").isNotNegative();
        other[at + ident.length - 1] ^= 1;
        Files.write(cache, other);
        assertIgnored(qsupVersion());
    }

    @Test
    void aCacheMadeForAnotherJarIsIgnored() throws Exception {
        Files.write(cache, goodCache);
        FileTime was = Files.getLastModifiedTime(jar);
        try {
            Files.setLastModifiedTime(jar, FileTime.fromMillis(was.toMillis() - 60_000)); // a rebuilt or copied jar
            assertIgnored(qsupVersion());
        } finally {
            Files.setLastModifiedTime(jar, was);
        }
    }

    @Test
    void aDamagedOrEmptyCacheIsIgnored() throws Exception {
        Files.write(cache, java.util.Arrays.copyOf(goodCache, 4096));
        assertIgnored(qsupVersion());
        Files.write(cache, new byte[0]);
        assertIgnored(qsupVersion());
    }

    @Test
    void aCacheDamagedInsideIsIgnored() throws Exception {
        // Right size and a sound header, but the mapped regions hold garbage (a bad disk, a botched copy): the JVM
        // maps such a file without a check of its own and crashes in the middle of class loading.
        byte[] damaged = goodCache.clone();
        for (int at = damaged.length / 4; at < damaged.length / 4 * 3; at += 4096) {
            damaged[at] ^= (byte) 0xff;
        }
        Files.write(cache, damaged);
        assertIgnored(qsupVersion());
    }

    private static void assertIgnored(Run r) {
        assertThat(r.out).isEqualTo("qsup " + Version.get() + "\n");
        assertThat(r.err).isEmpty();
        assertThat(r.code).isZero();
        assertThat(r.appClassesFromCache).isZero();
    }

    private record Run(int code, String out, String err, long appClassesFromCache) {}

    private static Run qsupVersion() throws Exception {
        Path log = dir.resolve("classes.log");
        Files.deleteIfExists(log);
        ProcessBuilder pb = new ProcessBuilder(dir.resolve("bin/qsup").toString(), "--version")
                .directory(dir.toFile()); // where a crashing JVM would leave its hs_err file
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("QSUP_JAR");
        pb.environment().put("QSUP_JAVA_OPTS", "-Xlog:class+load=info:file=" + log);
        Path out = dir.resolve("out");
        Path err = dir.resolve("err");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        long fromCache;
        try (Stream<String> lines = Files.lines(log)) {
            fromCache = lines.filter(l -> l.contains("io.qsup.") || l.contains("picocli."))
                    .filter(l -> l.contains("shared objects file") || l.contains("AOT cache")).count();
        }
        return new Run(p.exitValue(), Files.readString(out), Files.readString(err), fromCache);
    }

    /** The project's classes and its dependencies' in one jar, as the shaded jar holds them. */
    private static void writeJar(Path target) throws IOException {
        Path classes = PROJECT.resolve("target/classes");
        Manifest m = new Manifest();
        m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        Set<String> seen = new HashSet<>();
        try (OutputStream os = Files.newOutputStream(target); JarOutputStream j = new JarOutputStream(os, m);
                Stream<Path> s = Files.walk(classes)) {
            for (Path f : s.filter(Files::isRegularFile).sorted().toList()) {
                String name = classes.relativize(f).toString().replace(File.separatorChar, '/');
                seen.add(name);
                j.putNextEntry(new JarEntry(name));
                j.write(Files.readAllBytes(f));
                j.closeEntry();
            }
            for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
                if (!e.endsWith(".jar")) {
                    continue;
                }
                try (JarFile dep = new JarFile(e)) {
                    for (JarEntry in : java.util.Collections.list(dep.entries())) {
                        String name = in.getName();
                        if (in.isDirectory() || name.startsWith("META-INF/") && !name.startsWith("META-INF/services/")
                                || name.endsWith("module-info.class") || !seen.add(name)) {
                            continue;
                        }
                        j.putNextEntry(new JarEntry(name));
                        try (var is = dep.getInputStream(in)) {
                            is.transferTo(j);
                        }
                        j.closeEntry();
                    }
                }
            }
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int k = 0; k < needle.length; k++) {
                if (hay[i + k] != needle[k]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}

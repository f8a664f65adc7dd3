package io.qsup.qemu;

import io.qsup.config.Accel;
import io.qsup.config.DaemonSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The fixed daemon settings and host of the golden tests, so expected command lines and messages do not depend on
 * the machine. A golden definition may start with a line {@code # golden: no-kvm no-sandbox settings-accel=tcg}
 * to describe a different host or settings default; {@code incoming} asks for the live-migration target's argv.
 */
public final class Goldens {
    public static final String REGENERATE = "qsup.regenerateGoldens";

    private Goldens() {}

    public static Path root() {
        String dir = System.getProperty("qsup.projectDir");
        Path base = dir != null ? Path.of(dir) : Path.of("").toAbsolutePath();
        return base.resolve("src/test/resources/golden");
    }

    public static boolean regenerate() {
        return Boolean.getBoolean(REGENERATE);
    }

    /** Settings as a packaged install would have them, with {@code accel} as the header asks (default kvm). */
    public static DaemonSettings settings(Path definition) {
        return settings(definition, "/run/qsup");
    }

    public static DaemonSettings settings(Path definition, String runDir) {
        Accel accel = Accel.KVM;
        for (String flag : flags(definition)) {
            if (flag.startsWith("settings-accel=")) {
                accel = Accel.valueOf(flag.substring("settings-accel=".length()).toUpperCase(java.util.Locale.ROOT));
            }
        }
        return new DaemonSettings(Path.of("/etc/qsup/vms"), Path.of("/run/qsup/qsupd.sock"), "qsup", Path.of(runDir),
                Path.of("/var/lib/qsup"), Path.of("/var/log/qsup"), "qemu-system-x86_64", accel, 4, "info", null);
    }

    /** A host with KVM and a sandbox-capable QEMU unless the header says otherwise. */
    public static HostFacts host(Path definition, FileCheck files) {
        List<String> flags = flags(definition);
        return HostFacts.fixed(!flags.contains("no-kvm"), !flags.contains("no-sandbox"), files);
    }

    public static List<String> flags(Path definition) {
        if (!Files.isRegularFile(definition)) {
            return List.of();
        }
        try {
            String first = Files.readAllLines(definition, StandardCharsets.UTF_8).stream().findFirst().orElse("");
            return first.startsWith("# golden:") ? List.of(first.substring(9).trim().split("\\s+")) : List.of();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static List<Path> list(Path dir, String suffix) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix)).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static String stem(Path p, String suffix) {
        String n = p.getFileName().toString();
        return n.endsWith(suffix) ? n.substring(0, n.length() - suffix.length()) : n;
    }

    public static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void write(Path p, String content) {
        try {
            Files.writeString(p, content, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

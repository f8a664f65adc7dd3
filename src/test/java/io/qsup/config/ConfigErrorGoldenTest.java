package io.qsup.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.qemu.FileCheck;
import io.qsup.qemu.Goldens;
import io.qsup.qemu.HostFacts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Golden error messages: each {@code golden/errors/NAME.yaml} (one file) or {@code golden/errors/NAME/} (a folder of
 * definitions) must produce exactly the lines in {@code NAME.errors}, as {@code qsup validate} prints them. The host
 * has no KVM and the real file system; settings default to {@code accel: auto} unless the file's
 * {@code # golden:} header says {@code settings-accel=kvm}.
 */
class ConfigErrorGoldenTest {
    static final Path DIR = Goldens.root().resolve("errors");
    /** Long enough that a 40-character VM name pushes its sockets over the 107-byte limit. */
    static final String RUN_DIR = "/run/qsup/a-run-dir-that-is-rather-long-for-sockets";

    static DaemonSettings settings(Path definition) {
        DaemonSettings s = Goldens.settings(definition, RUN_DIR);
        boolean kvm = Goldens.flags(definition).contains("settings-accel=kvm");
        return new DaemonSettings(s.vmsDir(), s.controlSocket(), s.controlGroup(), s.runDir(), s.stateDir(),
                s.logDir(), s.qemuBinary(), kvm ? Accel.KVM : Accel.AUTO, s.maxParallelStarts(), s.logLevel(), null);
    }

    static final HostFacts HOST = HostFacts.fixed(false, true, FileCheck.real());

    /** What qsup validate prints for one golden, with paths shown relative to the golden folder. */
    static String render(Path golden) {
        List<ConfigError> errors;
        List<ConfigError> warnings;
        if (Files.isDirectory(golden)) {
            LoadResult r = ConfigLoader.loadDirectory(golden, settings(golden), HOST);
            errors = r.errors();
            warnings = r.warnings();
        } else {
            warnings = ConfigLoader.warnings(golden, settings(golden), HOST);
            try {
                ConfigLoader.loadFile(golden, settings(golden), HOST);
                errors = List.of();
            } catch (ConfigException e) {
                errors = e.errors();
            }
        }
        List<String> lines = new ArrayList<>();
        for (ConfigError e : errors) {
            lines.add(relative(e).format());
        }
        for (ConfigError w : warnings) {
            lines.add("warning: " + relative(w).format());
        }
        return String.join("\n", lines) + "\n";
    }

    private static ConfigError relative(ConfigError e) {
        Path shown = e.file() == null ? null : DIR.toAbsolutePath().normalize().relativize(e.file());
        String message = e.message().replace(DIR.toAbsolutePath().normalize() + "/", "");
        return new ConfigError(shown, e.line(), e.column(), e.keyPath(), message);
    }

    @TestFactory
    Stream<DynamicTest> everyBrokenDefinitionGivesItsGoldenErrors() throws Exception {
        List<Path> goldens;
        try (Stream<Path> s = Files.list(DIR)) {
            goldens = s.filter(p -> Files.isDirectory(p) || p.toString().endsWith(".yaml")).sorted().toList();
        }
        return goldens.stream().map(g -> DynamicTest.dynamicTest(g.getFileName().toString(), () -> {
            String actual = render(g);
            Path expected = DIR.resolve(Goldens.stem(g, ".yaml") + ".errors");
            if (Goldens.regenerate()) {
                Goldens.write(expected, actual);
            }
            assertThat(expected).as("golden %s (create it with -D%s=true)", expected, Goldens.REGENERATE).exists();
            assertEquals(Goldens.read(expected), actual, "errors of " + g.getFileName());
            assertThat(actual.lines().filter(l -> !l.startsWith("warning: ")).count())
                    .as("a golden error case reports at least one error").isPositive();
        }));
    }

    @Test
    void everyErrorNamesItsFileLineAndColumn() throws Exception {
        try (Stream<Path> s = Files.list(DIR)) {
            for (Path errors : s.filter(p -> p.toString().endsWith(".errors")).toList()) {
                for (String line : Goldens.read(errors).lines().toList()) {
                    assertThat(line).as("in %s", errors.getFileName()).matches("(warning: )?[^:]+\\.ya?ml(:\\d+:\\d+)?: .+");
                }
            }
        }
    }
}

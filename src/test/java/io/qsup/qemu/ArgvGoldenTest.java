package io.qsup.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qsup.config.ConfigException;
import io.qsup.config.ConfigLoader;
import io.qsup.config.VmDefinition;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Golden command lines, as libvirt's qemuxmlargv tests: each {@code golden/argv/NAME.yaml} must build exactly the
 * argv in {@code NAME.args}, one argument per line. Regenerate with {@code -Dqsup.regenerateGoldens=true} and
 * review the diff.
 */
class ArgvGoldenTest {
    static final Path DIR = Goldens.root().resolve("argv");

    /** The golden argv of a definition; a header {@code # golden: incoming} asks for the migration target's. */
    static List<String> argvOf(Path yaml) throws ConfigException {
        VmDefinition vm = ConfigLoader.loadFile(yaml, Goldens.settings(yaml), Goldens.host(yaml, FileCheck.allPresent()));
        return Goldens.flags(yaml).contains("incoming")
                ? ArgvBuilder.buildIncoming(vm, Goldens.settings(yaml), Goldens.host(yaml, FileCheck.allPresent()))
                : ArgvBuilder.build(vm, Goldens.settings(yaml), Goldens.host(yaml, FileCheck.allPresent()));
    }

    @TestFactory
    Stream<DynamicTest> everyDefinitionBuildsItsGoldenArgv() {
        return Goldens.list(DIR, ".yaml").stream().map(yaml -> DynamicTest.dynamicTest(yaml.getFileName().toString(), () -> {
            String actual = String.join("\n", argvOf(yaml)) + "\n";
            Path expected = DIR.resolve(Goldens.stem(yaml, ".yaml") + ".args");
            if (Goldens.regenerate()) {
                Goldens.write(expected, actual);
            }
            assertThat(expected).as("golden file %s (create it with -D%s=true)", expected, Goldens.REGENERATE).exists();
            assertEquals(Goldens.read(expected), actual, "argv of " + yaml.getFileName() + " differs from " + expected.getFileName());
        }));
    }

    /** A migration target must be the same machine as its source, or QEMU refuses the incoming state. */
    @TestFactory
    Stream<DynamicTest> everyIncomingArgvIsTheLaunchArgvPlusIncomingDefer() {
        return Goldens.list(DIR, ".yaml").stream().map(yaml -> DynamicTest.dynamicTest(yaml.getFileName().toString(), () -> {
            VmDefinition vm = ConfigLoader.loadFile(yaml, Goldens.settings(yaml),
                    Goldens.host(yaml, FileCheck.allPresent()));
            List<String> launch = ArgvBuilder.build(vm, Goldens.settings(yaml), Goldens.host(yaml, FileCheck.allPresent()));
            List<String> incoming = ArgvBuilder.buildIncoming(vm, Goldens.settings(yaml),
                    Goldens.host(yaml, FileCheck.allPresent()));
            assertThat(incoming).startsWith(launch.toArray(String[]::new)).hasSize(launch.size() + 2)
                    .endsWith("-incoming", "defer");
        }));
    }

    @Test
    void thereAreAtLeastTwentyGoldenDefinitionsAndNoOrphanedArgvFiles() {
        List<Path> yamls = Goldens.list(DIR, ".yaml");
        assertThat(yamls).hasSizeGreaterThanOrEqualTo(20);
        for (Path args : Goldens.list(DIR, ".args")) {
            assertThat(DIR.resolve(Goldens.stem(args, ".args") + ".yaml")).as("definition for " + args).exists();
        }
        assertThat(Files.exists(DIR)).isTrue();
    }
}

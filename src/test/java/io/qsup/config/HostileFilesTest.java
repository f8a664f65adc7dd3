package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qsup.cli.ExitCodes;
import io.qsup.qemu.FileCheck;
import io.qsup.qemu.HostFacts;
import java.io.FileOutputStream;
import java.io.RandomAccessFile;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Definition files that are not what their name promises (a link to /dev/zero, a FIFO, a socket, a folder, a 200 MiB
 * file), files with thousands of mistakes, and YAML built to blow up a parser: each gets a short, clear error naming
 * the file, the good files beside them still load, and nothing blocks or grows without bound. The timeouts run the
 * test on its own thread, so a read stuck in open(2) fails the test instead of hanging the build.
 */
class HostileFilesTest {
    static final HostFacts HOST = HostFacts.fixed(false, true, FileCheck.real());
    static final String NOT_REGULAR = ", not a regular file; only regular files are read: ";

    @TempDir Path dir;
    Path settingsFile;
    DaemonSettings settings;
    Path vms;

    @BeforeEach
    void setUp() throws Exception {
        settingsFile = HostileFiles.settings(dir);
        settings = DaemonSettings.load(settingsFile);
        vms = settings.vmsDir();
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void eachFileThatIsNotARegularFileGetsItsOwnErrorAndTheGoodOnesStillLoad() throws Exception {
        Files.writeString(vms.resolve("good.yaml"), "memory: 64M\n");
        Path elsewhere = Files.createDirectories(dir.resolve("elsewhere"));
        Files.createSymbolicLink(vms.resolve("linked.yaml"), Files.writeString(elsewhere.resolve("real.yaml"), "memory: 64M\n"));
        HostileFiles.linkToDevZero(vms.resolve("zero.yaml"));
        HostileFiles.fifo(vms.resolve("fifo.yaml"));
        HostileFiles.sparse(vms.resolve("big.yaml"), 200L << 20);
        int keys = HostileFiles.unknownKeysOfSize(vms.resolve("keys.yaml"), (1 << 20) + 4096);
        Files.createDirectory(vms.resolve("folder.yaml"));
        Files.createSymbolicLink(vms.resolve("dangling.yaml"), Path.of("nowhere.yaml"));
        long keysSize = Files.size(vms.resolve("keys.yaml"));
        assertThat(keys).isGreaterThan(40_000);
        try (ServerSocketChannel sock = HostileFiles.socket(vms.resolve("sock.yaml"))) {
            LoadResult r = ConfigLoader.loadDirectory(vms, settings, HOST);

            assertThat(r.vms().keySet()).containsExactly("good", "linked");
            assertThat(r.errorsByFile().keySet()).containsExactlyInAnyOrder(vms.resolve("zero.yaml"),
                    vms.resolve("fifo.yaml"), vms.resolve("big.yaml"), vms.resolve("keys.yaml"),
                    vms.resolve("folder.yaml"), vms.resolve("dangling.yaml"), vms.resolve("sock.yaml"));
            assertThat(only(r, "zero.yaml")).isEqualTo(vms.resolve("zero.yaml")
                    + ": is a symbolic link to /dev/zero, a character device" + NOT_REGULAR
                    + "remove it or put a VM definition there");
            assertThat(only(r, "fifo.yaml")).isEqualTo(vms.resolve("fifo.yaml")
                    + ": is a FIFO (named pipe)" + NOT_REGULAR + "remove it or put a VM definition there");
            assertThat(only(r, "sock.yaml")).isEqualTo(vms.resolve("sock.yaml")
                    + ": is a socket" + NOT_REGULAR + "remove it or put a VM definition there");
            assertThat(only(r, "folder.yaml")).isEqualTo(vms.resolve("folder.yaml")
                    + ": is a directory" + NOT_REGULAR + "rename or move the folder");
            assertThat(only(r, "big.yaml")).isEqualTo(vms.resolve("big.yaml") + ": file is 209715200 bytes, over the"
                    + " 1 MiB limit for a VM definition; check that this is the right file: it should be a few lines of YAML");
            assertThat(only(r, "keys.yaml")).isEqualTo(vms.resolve("keys.yaml") + ": file is " + keysSize
                    + " bytes, over the 1 MiB limit for a VM definition; check that this is the right file: it should be"
                    + " a few lines of YAML");
            assertThat(only(r, "dangling.yaml")).isEqualTo(vms.resolve("dangling.yaml")
                    + ": is a symbolic link to nowhere.yaml, which does not exist; fix or remove the link");
        }
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void validateNamesAFifoOrADeviceGivenAsItsTargetAndExitsWithAnError() throws Exception {
        Path fifo = HostileFiles.fifo(vms.resolve("fifo.yaml"));
        Path zero = HostileFiles.linkToDevZero(vms.resolve("zero.yaml"));

        CliRun r = CliRun.of("validate", "--config", settingsFile.toString(), fifo.toString());
        assertThat(r.out()).startsWith(fifo + ": is a FIFO (named pipe)" + NOT_REGULAR)
                .endsWith("1 error in 1 file; 0 VMs are valid\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);

        r = CliRun.of("validate", "--config", settingsFile.toString(), zero.toString());
        assertThat(r.out()).startsWith(zero + ": is a symbolic link to /dev/zero, a character device" + NOT_REGULAR)
                .endsWith("1 error in 1 file; 0 VMs are valid\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);
    }

    @Test
    void aThousandUnknownKeysGiveTheFirstFiftyAndOneLineForTheOtherNineHundredFifty() throws Exception {
        Path f = HostileFiles.unknownKeys(vms.resolve("keys.yaml"), 1000);
        Files.writeString(vms.resolve("good.yaml"), "memory: 64M\n");

        List<ConfigError> errors = ConfigLoader.loadDirectory(vms, settings, HOST).errorsByFile().get(f);
        assertThat(errors).hasSize(51);
        for (int i = 0; i < 50; i++) {
            assertThat(errors.get(i).format()).startsWith(f + ":" + (i + 1) + ":1: unknown-key-" + i + ": unknown key;");
        }
        assertThat(errors.get(50).format()).isEqualTo(f + ":51:1: and 950 more errors in this file, from here on;"
                + " fix the ones above and check again");
        assertThat(bytes(errors)).isLessThan(64 * 1024);

        assertThatThrownBy(() -> ConfigLoader.loadFile(f, settings, HOST))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).isEqualTo(errors));

        CliRun r = CliRun.of("validate", "--config", settingsFile.toString());
        assertThat(r.out().lines().filter(l -> l.startsWith(f.toString()))).hasSize(51);
        assertThat(r.out()).contains(errors.get(50).format())
                .endsWith("1000 errors in 1 file; 1 VM is valid\n");
        assertThat(r.out().getBytes(StandardCharsets.UTF_8).length).isLessThan(64 * 1024);
        assertThat(r.exit()).isEqualTo(ExitCodes.ERROR);
    }

    @Test
    void theSettingsFileIsCappedTheSameWay() throws Exception {
        Path f = HostileFiles.unknownKeys(dir.resolve("settings.yaml"), 1000);
        assertThatThrownBy(() -> DaemonSettings.load(f)).isInstanceOfSatisfying(ConfigException.class, e -> {
            assertThat(e.errors()).hasSize(51);
            assertThat(e.errors().get(50).format()).isEqualTo(f + ":51:1: and 950 more errors in this file, from here"
                    + " on; fix the ones above and check again");
        });
    }

    @Test
    @Timeout(value = 10, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void billionLaughsStopsAtTheFirstAliasWithItsPlace() throws Exception {
        StringBuilder sb = new StringBuilder("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (char c = 'b'; c <= 'j'; c++) {
            sb.append(c).append(": &").append(c).append(" [");
            for (int i = 0; i < 9; i++) {
                sb.append(i > 0 ? ", " : "").append('*').append((char) (c - 1));
            }
            sb.append("]\n");
        }
        Path f = Files.writeString(vms.resolve("lol.yaml"), sb);
        assertThatThrownBy(() -> ConfigLoader.loadFile(f, settings, HOST))
                .isInstanceOfSatisfying(ConfigException.class, e -> assertThat(e.errors()).extracting(ConfigError::format)
                        .containsExactly(f + ":2:8: '*a' is an alias; aliases (and '<<' merges) are not supported:"
                                + " write the value out in full"));
    }

    @Test
    void anAliasIsRefusedRatherThanTurnedIntoTheAnchorsName() throws Exception {
        Path alias = Files.writeString(vms.resolve("alias.yaml"), "memory: &m 256M\ndescription: *m\n");
        Path merge = Files.writeString(vms.resolve("merge.yaml"), "base: &b {memory: 256M}\n<<: *b\n");
        LoadResult r = ConfigLoader.loadDirectory(vms, settings, HOST);
        assertThat(r.vms()).isEmpty();
        assertThat(r.errors()).extracting(ConfigError::format).containsExactly(
                alias + ":2:14: '*m' is an alias; aliases (and '<<' merges) are not supported: write the value out in full",
                merge + ":2:5: '*b' is an alias; aliases (and '<<' merges) are not supported: write the value out in full");
    }

    @Test
    @Timeout(value = 10, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void deepNestingIsRefusedWhereItGoesTooDeep() throws Exception {
        Path flow = Files.writeString(vms.resolve("flow.yaml"), "disks: " + "[".repeat(500_000));
        StringBuilder block = new StringBuilder();
        for (int i = 0; i < 1000; i++) {
            block.append(" ".repeat(i)).append("k:\n");
        }
        Path deep = Files.writeString(vms.resolve("block.yaml"), block);
        String rule = ": nesting deeper than 64 levels; a definition needs a few levels at most: check the brackets and"
                + " the indentation";
        LoadResult r = ConfigLoader.loadDirectory(vms, settings, HOST);
        assertThat(r.errors()).extracting(ConfigError::format).containsExactly(deep + ":66:66" + rule, flow + ":1:72" + rule);
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFifoSwappedInAfterTheTypeCheckCostsTheDeadlineNotAHang() throws Exception {
        // What the loader meets if a FIFO replaces the file between its stat and its open: the open itself blocks.
        Path fifo = HostileFiles.fifo(vms.resolve("fifo.yaml"));
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> ConfigFile.within(fifo, () -> ConfigFile.openAndRead(fifo, "a VM definition")))
                .isInstanceOf(ConfigFile.Refused.class)
                .hasMessage("could not be opened and read within 1 s: it was replaced by something that is not a regular"
                        + " file (such as a FIFO) while being read, or its file system does not answer; check it with"
                        + " ls -l and try again");
        assertThat(System.nanoTime() - t0).isLessThan(TimeUnit.SECONDS.toNanos(3));
        // The parked open(2) ends once a writer comes; be that writer, so the test leaves no thread behind.
        try (FileOutputStream unblock = new FileOutputStream(fifo.toFile())) {
            assertThat(readerEnds("config-read fifo.yaml")).isTrue();
        }
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFifoWithASilentWriterIsGivenUpAfterTheDeadlineAndItsReaderStops() throws Exception {
        Path fifo = HostileFiles.fifo(vms.resolve("silent.yaml"));
        try (RandomAccessFile writer = new RandomAccessFile(fifo.toFile(), "rw")) { // O_RDWR: opens at once on Linux
            assertThatThrownBy(() -> ConfigFile.within(fifo, () -> ConfigFile.openAndRead(fifo, "a VM definition")))
                    .isInstanceOf(ConfigFile.Refused.class).hasMessageStartingWith("could not be opened and read within 1 s");
            assertThat(readerEnds("config-read silent.yaml")).as("the blocked read is interrupted").isTrue();
        }
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aDeviceSwappedInAfterTheTypeCheckIsReadOnlyUpToTheLimit() throws Exception {
        assertThatThrownBy(() -> ConfigFile.within(Path.of("/dev/zero"),
                () -> ConfigFile.openAndRead(Path.of("/dev/zero"), "a VM definition")))
                .isInstanceOf(ConfigFile.Refused.class)
                .hasMessage("file is more than 1048576 bytes, over the 1 MiB limit for a VM definition; check that this"
                        + " is the right file: it should be a few lines of YAML");
    }

    private static String only(LoadResult r, String file) {
        List<ConfigError> errors = r.errorsByFile().entrySet().stream()
                .filter(e -> e.getKey().getFileName().toString().equals(file)).findFirst().orElseThrow().getValue();
        assertThat(errors).as("errors of %s", file).hasSize(1);
        return errors.get(0).format();
    }

    private static int bytes(List<ConfigError> errors) {
        List<String> lines = new ArrayList<>();
        errors.forEach(e -> lines.add(e.format()));
        return String.join("\n", lines).getBytes(StandardCharsets.UTF_8).length;
    }

    /** Whether the reader thread named {@code name} is gone within 5 s. */
    private static boolean readerEnds(String name) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            if (Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().equals(name))) {
                return true;
            }
            Thread.sleep(20);
        }
        return false;
    }
}

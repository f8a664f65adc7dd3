package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;

class StateStoreTest {

    @Test
    void intentAndTallySurviveANewStoreInstance(@TempDir Path stateDir) throws Exception {
        StateStore first = new StateStore(stateDir);
        VmRecord r = VmRecord.fresh().withIntent(Intent.STOPPED)
                .withRestart(List.of(Instant.ofEpochMilli(1000), Instant.ofEpochMilli(2000)))
                .withGoodStart(true).withExitCause(io.qsup.vm.ExitCause.of(io.qsup.vm.ExitCause.Kind.CRASHED, "pid 7 died"),
                        java.time.Instant.ofEpochMilli(1_700_000_000_000L));
        first.save("web1", r);

        VmRecord back = new StateStore(stateDir).load("web1");
        assertThat(back).isEqualTo(r);
        assertThat(back.intent()).isEqualTo(Intent.STOPPED);
        assertThat(back.restarts()).isEqualTo(1);
        assertThat(back.recentStarts()).containsExactly(Instant.ofEpochMilli(1000), Instant.ofEpochMilli(2000));
        try (Stream<Path> files = Files.list(stateDir.resolve("supervisor"))) {
            assertThat(files).as("no temp files left").containsExactly(stateDir.resolve("supervisor/web1.json"));
        }
    }

    @Test
    void overwriteReplacesTheWholeRecord(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        s.save("db", VmRecord.fresh().withIntent(Intent.STARTED).withFailed(true));
        s.save("db", VmRecord.fresh().withIntent(Intent.STOPPED));
        assertThat(s.load("db")).isEqualTo(VmRecord.fresh().withIntent(Intent.STOPPED));
    }

    @Test
    void unknownVmGetsAFreshRecord(@TempDir Path stateDir) {
        assertThat(new StateStore(stateDir).load("nobody")).isEqualTo(VmRecord.fresh());
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"intent\": \"STOPP", "null", "{}{", "{}", "[]", "\"STARTED\"", "{\"intent\": \"BOGUS\"}",
        "{\"intent\": \"STARTED\", \"restarts\": null}", "{\"intent\": \"STARTED\", \"intent\": \"STOPPED\"}", ""})
    void aFileThatIsNotOneValidRecordIsMovedAsideOnceAndTheVmIsAssumedStopped(String content, @TempDir Path stateDir)
            throws Exception {
        StateStore s = new StateStore(stateDir);
        Path dir = stateDir.resolve("supervisor");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("web1.json"), content);
        StateStore.Loaded l = s.read("web1");
        assertThat(l.recovered()).isTrue();
        assertThat(l.record().intent()).as("never autostart on a guess").isEqualTo(Intent.STOPPED);
        assertThat(l.problem()).contains(dir.resolve("web1.json").toString()).contains("moved to");
        assertThat(dir.resolve("web1.json")).doesNotExist();
        try (var aside = Files.list(dir)) {
            List<Path> moved = aside.filter(p -> p.getFileName().toString().startsWith("web1.json.corrupt-")).toList();
            assertThat(moved).hasSize(1);
            assertThat(Files.readString(moved.get(0))).isEqualTo(content);
        }
        // once: the next read finds no file and no problem
        assertThat(s.read("web1").recovered()).isFalse();
    }

    @Test
    void tempFilesOfInterruptedWritesAreRemovedAndRecordsKept(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        s.save("web1", VmRecord.fresh().withIntent(Intent.STOPPED));
        Path dir = stateDir.resolve("supervisor");
        Path torn = dir.resolve(".web1.json.0b7c-interrupted.tmp");
        Files.writeString(torn, "{\"intent\": \"STA");
        s.removeTemporaries();
        assertThat(torn).doesNotExist();
        assertThat(s.load("web1").intent()).isEqualTo(Intent.STOPPED);
    }

    @Test
    void unwritableStateDirGivesAClearError(@TempDir Path dir) throws Exception {
        Path notADir = dir.resolve("file");
        Files.writeString(notADir, "x");
        assertThatThrownBy(() -> new StateStore(notADir).save("web1", VmRecord.fresh()))
                .isInstanceOf(SupervisorException.class)
                .hasMessageContaining("web1").hasMessageContaining("state-dir");
    }

    @Test
    void namesThatWouldEscapeTheFolderAreRefused(@TempDir Path stateDir) {
        assertThatThrownBy(() -> new StateStore(stateDir).save("../etc", VmRecord.fresh()))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aWriteFromAnInterruptedThreadStillLandsAndTheInterruptIsKept(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        Thread.currentThread().interrupt(); // as qsupd's exit interrupts a VM's thread in the middle of its work
        try {
            s.save("web1", VmRecord.fresh().withIntent(Intent.STOPPED).withStopPending(true));
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
        assertThat(s.load("web1").intent()).isEqualTo(Intent.STOPPED);
        assertThat(s.load("web1").stopPending()).isTrue();
    }
}

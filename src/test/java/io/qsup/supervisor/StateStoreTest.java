package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StateStoreTest {

    @Test
    void intentAndTallySurviveANewStoreInstance(@TempDir Path stateDir) throws Exception {
        StateStore first = new StateStore(stateDir);
        VmRecord r = VmRecord.fresh().withIntent(Intent.STOPPED)
                .withRestart(List.of(Instant.ofEpochMilli(1000), Instant.ofEpochMilli(2000)))
                .withGoodStart(true).withExitCause("crashed");
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

    @Test
    void corruptFileIsMovedAsideNotFatal(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        Files.createDirectories(stateDir.resolve("supervisor"));
        Files.writeString(stateDir.resolve("supervisor/web1.json"), "{\"intent\": \"STOPP");
        assertThat(s.load("web1")).isEqualTo(VmRecord.fresh());
        assertThat(stateDir.resolve("supervisor/web1.json.corrupt")).exists();
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
}

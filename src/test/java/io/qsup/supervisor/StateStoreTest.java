package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
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
        "{\"intent\": \"STARTED\", \"restarts\": null}", "{\"intent\": \"STARTED\", \"intent\": \"STOPPED\"}", "",
        "{\"intent\": \"STARTED\", \"failed\": \"yes\"}", "{\"intent\": \"STARTED\", \"restarts\": 1.5}",
        "{\"intent\": \"STARTED\", \"recentStartsMillis\": [1, null]}", "{\"intent\": 3}",
        "{\"intent\": \"STARTED\", \"lastExitCause\": {}}", "{\"intent\": \"STARTED\"} trailing"})
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

    @Test
    void aRecordIsWrittenInTheLayoutEveryEarlierQsupdWrote(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        s.save("web1", VmRecord.fresh().withIntent(Intent.STARTED)
                .withRestart(List.of(Instant.ofEpochMilli(1000), Instant.ofEpochMilli(2000)))
                .withExitCause(io.qsup.vm.ExitCause.of(io.qsup.vm.ExitCause.Kind.CRASHED, "pid 7 \"died\""),
                        Instant.ofEpochMilli(1_700_000_000_000L)));
        assertThat(Files.readString(stateDir.resolve("supervisor/web1.json"))).isEqualTo("""
                {
                  "intent" : "STARTED",
                  "failed" : false,
                  "restarts" : 1,
                  "consecutive" : 1,
                  "recentStartsMillis" : [ 1000, 2000 ],
                  "hadGoodStart" : false,
                  "lastExitCause" : "crashed",
                  "lastExitDetail" : "pid 7 \\"died\\"",
                  "lastExitAtMillis" : 1700000000000,
                  "stopPending" : false,
                  "restartInProgress" : false,
                  "downByPolicyBoot" : null
                }""");
        s.save("db", VmRecord.fresh());
        assertThat(Files.readString(stateDir.resolve("supervisor/db.json"))).isEqualTo("""
                {
                  "intent" : "NONE",
                  "failed" : false,
                  "restarts" : 0,
                  "consecutive" : 0,
                  "recentStartsMillis" : [ ],
                  "hadGoodStart" : false,
                  "lastExitCause" : null,
                  "lastExitDetail" : null,
                  "lastExitAtMillis" : null,
                  "stopPending" : false,
                  "restartInProgress" : false,
                  "downByPolicyBoot" : null
                }""");
    }

    @Test
    void recordsOfEarlierAndNewerQsupdsRead(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        Path dir = stateDir.resolve("supervisor");
        Files.createDirectories(dir);
        // an early qsupd wrote the cause as "word: detail" and knew fewer fields; a newer one may know more
        Files.writeString(dir.resolve("old.json"), """
                {"intent": "STOPPED", "restarts": 3, "consecutive": 2, "recentStartsMillis": [5, 6],
                 "lastExitCause": "crashed: pid 9 died", "lastExitAtMillis": 42}""");
        Files.writeString(dir.resolve("new.json"), """
                {"intent": "STARTED", "stopPending": true, "somethingNew": {"a": [1, {"b": null}]}, "more": [[]],
                 "downByPolicyBoot": "0f3c"}""");
        StateStore.Loaded old = s.read("old");
        assertThat(old.recovered()).isFalse();
        assertThat(old.record()).isEqualTo(new VmRecord(Intent.STOPPED, false, 3, 2, List.of(5L, 6L), false, "crashed",
                "pid 9 died", 42L, false, false, null));
        StateStore.Loaded newer = s.read("new");
        assertThat(newer.recovered()).isFalse();
        assertThat(newer.record()).isEqualTo(VmRecord.fresh().withIntent(Intent.STARTED).withStopPending(true)
                .withDownByPolicy("0f3c"));
    }

    @Test
    void aRecordOfTheWrongShapeIsReportedByItsField(@TempDir Path stateDir) throws Exception {
        StateStore s = new StateStore(stateDir);
        Path dir = stateDir.resolve("supervisor");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("a.json"), "{\"intent\": \"STARTED\",\n \"failed\": \"yes\"}");
        assertThat(s.read("a").problem()).contains("'failed' is a string yes, not true or false (line 2)");
        Files.writeString(dir.resolve("b.json"), "{\"intent\": \"BOGUS\"}");
        assertThat(s.read("b").problem()).contains("'intent' is 'BOGUS', not one of [NONE, STARTED, STOPPED]");
    }

    @Property(tries = 300)
    void everyRecordReadsBackAsItWasWritten(@ForAll("records") VmRecord r) throws Exception {
        assertThat(StateStore.decode(StateStore.encode(r))).isEqualTo(r);
    }

    @Provide
    Arbitrary<VmRecord> records() {
        Arbitrary<String> text = Arbitraries.strings().ofMaxLength(40).injectNull(0.3);
        Arbitrary<Long> millis = Arbitraries.longs();
        return Combinators.combine(Arbitraries.of(Intent.class), Arbitraries.integers().between(0, Integer.MAX_VALUE),
                millis.list().ofMaxSize(5), text, text.filter(t -> t == null || !t.contains(": ")), millis.injectNull(0.3),
                Arbitraries.of(true, false).list().ofSize(5), text)
                .as((intent, n, starts, detail, cause, at, flags, boot) -> new VmRecord(intent, flags.get(0), n, n / 2,
                        starts, flags.get(1), cause, detail, at, flags.get(2), flags.get(3),
                        boot));
    }
}

package io.qsup.supervisor;

import java.time.Instant;
import java.util.List;

/**
 * What qsupd persists per VM under {@code state-dir}: the operator's intent and the restart tally. Times are epoch
 * milliseconds so the file needs no extra Jackson module.
 *
 * @param intent              the operator's last request
 * @param failed              true while the VM is in {@code failed} (start limit hit)
 * @param restarts            automatic restarts done in total since the operator last started or reset it
 * @param consecutive         restarts since the last run that counted as good; drives {@link Backoff}
 * @param recentStartsMillis  automatic starts inside the start-limit window; drives {@link StartLimit}
 * @param hadGoodStart        true once the VM reached running since the operator last started it
 * @param lastExitCause       label of the last exit cause, or null
 */
public record VmRecord(Intent intent, boolean failed, int restarts, int consecutive, List<Long> recentStartsMillis,
                       boolean hadGoodStart, String lastExitCause) {

    public VmRecord {
        intent = intent == null ? Intent.NONE : intent;
        recentStartsMillis = recentStartsMillis == null ? List.of() : List.copyOf(recentStartsMillis);
    }

    /** A VM qsupd has never seen. */
    public static VmRecord fresh() {
        return new VmRecord(Intent.NONE, false, 0, 0, List.of(), false, null);
    }

    public List<Instant> recentStarts() {
        return recentStartsMillis.stream().map(Instant::ofEpochMilli).toList();
    }

    public VmRecord withIntent(Intent i) {
        return new VmRecord(i, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause);
    }

    public VmRecord withFailed(boolean f) {
        return new VmRecord(intent, f, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause);
    }

    public VmRecord withGoodStart(boolean good) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, good, lastExitCause);
    }

    public VmRecord withExitCause(String cause) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, cause);
    }

    /** Counts one automatic restart admitted at the given start times. */
    public VmRecord withRestart(List<Instant> starts) {
        return new VmRecord(intent, failed, restarts + 1, consecutive + 1,
                starts.stream().map(Instant::toEpochMilli).toList(), hadGoodStart, lastExitCause);
    }

    /** The VM ran long enough: the backoff starts over. */
    public VmRecord withConsecutiveReset() {
        return new VmRecord(intent, failed, restarts, 0, recentStartsMillis, hadGoodStart, lastExitCause);
    }

    /** Explicit start or reset-failed: the tally starts over. */
    public VmRecord withTallyReset() {
        return new VmRecord(intent, false, 0, 0, List.of(), false, lastExitCause);
    }
}

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
 * @param stopPending         true from an operator stop's request until its ladder ended the VM; a qsupd that finds
 *                            the VM still running at start resumes the stop
 */
public record VmRecord(Intent intent, boolean failed, int restarts, int consecutive, List<Long> recentStartsMillis,
                       boolean hadGoodStart, String lastExitCause, boolean stopPending) {

    public VmRecord {
        intent = intent == null ? Intent.NONE : intent;
        recentStartsMillis = recentStartsMillis == null ? List.of() : List.copyOf(recentStartsMillis);
    }

    /** A VM qsupd has never seen. */
    public static VmRecord fresh() {
        return new VmRecord(Intent.NONE, false, 0, 0, List.of(), false, null, false);
    }

    public List<Instant> recentStarts() {
        return recentStartsMillis.stream().map(Instant::ofEpochMilli).toList();
    }

    public VmRecord withIntent(Intent i) {
        return new VmRecord(i, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause, stopPending);
    }

    public VmRecord withFailed(boolean f) {
        return new VmRecord(intent, f, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause, stopPending);
    }

    public VmRecord withGoodStart(boolean good) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, good, lastExitCause,
                stopPending);
    }

    public VmRecord withExitCause(String cause) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, cause,
                stopPending);
    }

    /** Counts one automatic restart admitted at the given start times. */
    public VmRecord withRestart(List<Instant> starts) {
        return new VmRecord(intent, failed, restarts + 1, consecutive + 1,
                starts.stream().map(Instant::toEpochMilli).toList(), hadGoodStart, lastExitCause, stopPending);
    }

    /** The VM ran long enough: the backoff starts over. */
    public VmRecord withConsecutiveReset() {
        return new VmRecord(intent, failed, restarts, 0, recentStartsMillis, hadGoodStart, lastExitCause, stopPending);
    }

    /** Explicit start or reset-failed: the tally starts over. */
    public VmRecord withTallyReset() {
        return new VmRecord(intent, false, 0, 0, List.of(), false, lastExitCause, stopPending);
    }

    /** An operator stop was asked (true) or its ladder ended the VM (false). */
    public VmRecord withStopPending(boolean pending) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                pending);
    }
}

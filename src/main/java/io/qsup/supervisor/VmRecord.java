package io.qsup.supervisor;

import io.qsup.vm.ExitCause;
import java.time.Instant;
import java.util.List;

/**
 * What qsupd persists per VM under {@code state-dir}: the operator's intent and the restart tally. Times are epoch
 * milliseconds; {@link StateStore} reads and writes the file.
 *
 * @param intent              the operator's last request
 * @param failed              true while the VM is in {@code failed} (start limit hit)
 * @param restarts            automatic restarts done in total since the operator last started or reset it
 * @param consecutive         restarts since the last run that counted as good; drives {@link Backoff}
 * @param recentStartsMillis  automatic starts inside the start-limit window; drives {@link StartLimit}
 * @param hadGoodStart        true once the VM reached running since the operator last started it
 * @param lastExitCause       the word of the last exit cause ({@code crashed}), or null
 * @param lastExitDetail      its detail, or null
 * @param lastExitAtMillis    when it happened, or null
 * @param stopPending         true from an operator stop's request until its ladder ended the VM; a qsupd that finds
 *                            the VM still running at start resumes the stop
 * @param restartInProgress   true from an operator restart's request until its start; a qsupd that finds the VM still
 *                            running at start resumes the restart
 * @param downByPolicyBoot    the boot id under which the restart policy left the VM down after an exit (restart: no,
 *                            on-failure after a clean exit, start limit); a qsupd restart in the same boot keeps it down,
 *                            a host reboot lets autostart apply again; null otherwise
 */
public record VmRecord(Intent intent, boolean failed, int restarts, int consecutive, List<Long> recentStartsMillis,
                       boolean hadGoodStart, String lastExitCause, String lastExitDetail, Long lastExitAtMillis,
                       boolean stopPending, boolean restartInProgress, String downByPolicyBoot) {

    public VmRecord {
        intent = intent == null ? Intent.NONE : intent;
        recentStartsMillis = recentStartsMillis == null ? List.of() : List.copyOf(recentStartsMillis);
        if (lastExitCause != null && lastExitDetail == null && lastExitCause.contains(": ")) {
            // written by an older qsupd as "word: detail"
            int colon = lastExitCause.indexOf(": ");
            lastExitDetail = lastExitCause.substring(colon + 2);
            lastExitCause = lastExitCause.substring(0, colon);
        }
    }

    /** A VM qsupd has never seen. */
    public static VmRecord fresh() {
        return new VmRecord(Intent.NONE, false, 0, 0, List.of(), false, null, null, null, false, false, null);
    }

    public List<Instant> recentStarts() {
        return recentStartsMillis.stream().map(Instant::ofEpochMilli).toList();
    }

    /** The last exit cause as recorded, or null. */
    public ExitCause lastExit() {
        return lastExitCause == null ? null : ExitCause.of(ExitCause.Kind.fromLabel(lastExitCause),
                lastExitDetail == null ? "" : lastExitDetail);
    }

    public Instant lastExitAt() {
        return lastExitAtMillis == null ? null : Instant.ofEpochMilli(lastExitAtMillis);
    }

    public VmRecord withIntent(Intent i) {
        return new VmRecord(i, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, restartInProgress, downByPolicyBoot);
    }

    public VmRecord withFailed(boolean f) {
        return new VmRecord(intent, f, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, restartInProgress, downByPolicyBoot);
    }

    /** The VM reached running: whatever kept it down is over. */
    public VmRecord withGoodStart(boolean good) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, good, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, restartInProgress, good ? null : downByPolicyBoot);
    }

    public VmRecord withExitCause(ExitCause cause, Instant at) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart,
                cause.kind().label(), cause.detail(), at.toEpochMilli(), stopPending, restartInProgress, downByPolicyBoot);
    }

    /** Counts one automatic restart admitted at the given start times. */
    public VmRecord withRestart(List<Instant> starts) {
        return new VmRecord(intent, failed, restarts + 1, consecutive + 1,
                starts.stream().map(Instant::toEpochMilli).toList(), hadGoodStart, lastExitCause, lastExitDetail,
                lastExitAtMillis, stopPending, restartInProgress, downByPolicyBoot);
    }

    /** The VM ran long enough: the backoff starts over. */
    public VmRecord withConsecutiveReset() {
        return new VmRecord(intent, failed, restarts, 0, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, restartInProgress, downByPolicyBoot);
    }

    /** Explicit start or reset-failed: the tally starts over. */
    public VmRecord withTallyReset() {
        return new VmRecord(intent, false, 0, 0, List.of(), false, lastExitCause, lastExitDetail, lastExitAtMillis,
                stopPending, restartInProgress, null);
    }

    /** An operator stop was asked (true) or its ladder ended the VM (false). */
    public VmRecord withStopPending(boolean pending) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, pending, restartInProgress, downByPolicyBoot);
    }

    /** An operator restart was asked (true) or its start ran (false). */
    public VmRecord withRestartInProgress(boolean inProgress) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, inProgress, downByPolicyBoot);
    }

    /** The restart policy left the VM down in boot {@code bootId} (null: no longer). */
    public VmRecord withDownByPolicy(String bootId) {
        return new VmRecord(intent, failed, restarts, consecutive, recentStartsMillis, hadGoodStart, lastExitCause,
                lastExitDetail, lastExitAtMillis, stopPending, restartInProgress, bootId);
    }
}

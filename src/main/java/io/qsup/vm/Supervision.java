package io.qsup.vm;

import java.time.Duration;

/**
 * What a {@link VmController} asks of whoever supervises it: the restart decision after an exit, and notice of a good
 * start. Called on the VM's own operations thread; implementations may do small file I/O (persisting the tally) but
 * must not call back into the same controller synchronously.
 */
public interface Supervision {

    /**
     * Waits up to {@code wait} for a launch slot; the supervisor uses it to keep at most {@code max-parallel-starts}
     * launches at once. Each {@code true} is paired with one {@link #launchFinished}.
     */
    default boolean tryAcquireLaunchSlot(String vm, Duration wait) throws InterruptedException {
        return true;
    }

    /** The launch that {@link #tryAcquireLaunchSlot} admitted is over, whatever its outcome. */
    default void launchFinished(String vm) {}

    /**
     * True if the VM should be running by the operator's intent and its definition; asked when a stale pidfile is
     * found, to tell a crash while qsupd was down from leftovers of a VM nobody meant to run.
     */
    default boolean expectedRunning(String vm) {
        return false;
    }

    /** The VM reached running or paused after a launch. */
    void onGoodStart(String vm);

    /** The VM ended by itself (or its launch failed); the answer says what state to go to. */
    Decision onExit(String vm, ExitCause cause);

    /** What to do after an exit. */
    sealed interface Decision {
        String reason();

        /** Stay stopped. */
        record Stop(String reason) implements Decision {}

        /** Start again after {@code delay}. */
        record Restart(Duration delay, String reason) implements Decision {}

        /** The start limit was hit: go to failed. */
        record Fail(String reason) implements Decision {}
    }

    /** Never restarts: for tests and tools that only launch. */
    Supervision NONE = new Supervision() {
        @Override
        public void onGoodStart(String vm) {}

        @Override
        public Decision onExit(String vm, ExitCause cause) {
            return new Decision.Stop("not supervised");
        }
    };
}

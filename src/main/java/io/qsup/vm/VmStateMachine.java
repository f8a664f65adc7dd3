package io.qsup.vm;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The state of one VM and the only place it changes: {@link #setState} checks the move against {@link Transitions},
 * logs {@code from -> to (cause)} and tells listeners. Beside the state it keeps the {@code unresponsive} flag, the
 * restart-pending keys and the last exit cause.
 *
 * <p>Locking: {@code lock} guards every field and is held while listeners run, so every listener sees the events of
 * this VM one at a time and in order. Listeners therefore must not block or do I/O (hand work to another thread, as
 * the hook runner does) and must not change this VM's state from inside the callback. Readers may call the getters from
 * any thread.
 */
public final class VmStateMachine {
    private static final Logger log = LoggerFactory.getLogger(VmStateMachine.class);

    private final String vm;
    private final Clock clock;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final List<Consumer<VmEvent>> listeners = new CopyOnWriteArrayList<>();

    private VmState state;
    private Instant since;
    private boolean unresponsive;
    private List<String> restartPendingKeys = List.of();
    private ExitCause lastExitCause;
    private Instant lastExitAt;
    private Cause lastCause;
    private String lastDetail = "";

    public VmStateMachine(String vm) {
        this(vm, Clock.systemUTC());
    }

    public VmStateMachine(String vm, Clock clock) {
        this(vm, clock, VmState.STOPPED);
    }

    /** Starts in {@code initial}: {@code stopped}, or {@code adopting} for a VM qsupd found at its own start. */
    public VmStateMachine(String vm, Clock clock, VmState initial) {
        this.vm = Objects.requireNonNull(vm, "vm");
        this.clock = clock;
        this.since = clock.instant();
        this.state = Objects.requireNonNull(initial, "initial");
    }

    public String vm() {
        return vm;
    }

    /** Adds a listener for every event of this VM; close the handle to remove it. */
    public AutoCloseable addListener(Consumer<VmEvent> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    /**
     * Moves to {@code to}, logging and publishing the change.
     *
     * @param cause  why, as one word of the closed set
     * @param detail the particulars for people; may be empty
     * @return the previous state
     * @throws IllegalTransitionException if the table forbids the move
     */
    public VmState setState(VmState to, Cause cause, String detail) {
        lock.lock();
        try {
            VmState from = state;
            Transitions.check(vm, from, to);
            state = to;
            since = clock.instant();
            lastCause = Objects.requireNonNull(cause, "cause");
            lastDetail = detail == null ? "" : detail;
            if (!to.hasProcess() && unresponsive) {
                unresponsive = false; // no process, nothing to be unresponsive
            }
            log.info("VM {}: {} -> {} ({}{})", vm, from, to, cause, lastDetail.isEmpty() ? "" : ": " + lastDetail);
            publish(new VmEvent.StateChange(vm, from, to, cause, lastDetail, since));
            changed.signalAll();
            return from;
        } finally {
            lock.unlock();
        }
    }

    /** Moves to {@code to} only if the state is still {@code expected}; returns whether it moved. */
    public boolean compareAndSet(VmState expected, VmState to, Cause cause, String detail) {
        lock.lock();
        try {
            if (state != expected) {
                return false;
            }
            setState(to, cause, detail);
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Records why the VM's last QEMU ended; kept until the next exit. */
    public void setLastExitCause(ExitCause cause) {
        lock.lock();
        try {
            lastExitCause = cause;
            lastExitAt = clock.instant();
        } finally {
            lock.unlock();
        }
    }

    /** Sets the {@code unresponsive} flag; publishes an event only when it flips. */
    public void setUnresponsive(boolean value, String detail) {
        lock.lock();
        try {
            if (unresponsive == value) {
                return;
            }
            unresponsive = value;
            if (value) {
                log.warn("VM {}: unresponsive ({})", vm, detail);
            } else {
                log.info("VM {}: responsive again", vm);
            }
            publish(new VmEvent.ResponsivenessChange(vm, value, detail, clock.instant()));
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Marks the VM restart-pending with the changed definition keys; an empty list clears it. */
    public void setRestartPending(List<String> keys) {
        lock.lock();
        try {
            List<String> copy = List.copyOf(keys);
            if (copy.equals(restartPendingKeys)) {
                return;
            }
            restartPendingKeys = copy;
            if (!copy.isEmpty()) {
                log.info("VM {}: restart pending, changed keys {}", vm, copy);
            }
            publish(new VmEvent.RestartPendingChange(vm, copy, clock.instant()));
        } finally {
            lock.unlock();
        }
    }

    /** Publishes an event that is not a transition (a scheduled restart, a QMP event), in order with the others. */
    public void announce(VmEvent event) {
        lock.lock();
        try {
            publish(event);
        } finally {
            lock.unlock();
        }
    }

    /** Publishes a stop-ladder rung. */
    public void reportRung(StopRung rung) {
        lock.lock();
        try {
            log.info("VM {}: stop ladder at rung {}", vm, rung);
            publish(new VmEvent.StopRungReached(vm, rung, clock.instant()));
        } finally {
            lock.unlock();
        }
    }

    public VmState state() {
        lock.lock();
        try {
            return state;
        } finally {
            lock.unlock();
        }
    }

    /** When the current state was entered. */
    public Instant since() {
        lock.lock();
        try {
            return since;
        } finally {
            lock.unlock();
        }
    }

    public boolean unresponsive() {
        lock.lock();
        try {
            return unresponsive;
        } finally {
            lock.unlock();
        }
    }

    public List<String> restartPendingKeys() {
        lock.lock();
        try {
            return restartPendingKeys;
        } finally {
            lock.unlock();
        }
    }

    /** The last exit cause, or null if the VM never ended under this qsupd. */
    public ExitCause lastExitCause() {
        lock.lock();
        try {
            return lastExitCause;
        } finally {
            lock.unlock();
        }
    }

    /** When the last exit cause was recorded, or null. */
    public Instant lastExitAt() {
        lock.lock();
        try {
            return lastExitAt;
        } finally {
            lock.unlock();
        }
    }

    /** The cause word of the last transition, or null before the first. */
    public Cause lastCause() {
        lock.lock();
        try {
            return lastCause;
        } finally {
            lock.unlock();
        }
    }

    /** The detail of the last transition. */
    public String lastDetail() {
        lock.lock();
        try {
            return lastDetail;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits until the state satisfies {@code p} or the timeout passes.
     *
     * @return the state that satisfied {@code p}
     * @throws java.util.concurrent.TimeoutException naming the state it was left in
     */
    public VmState await(Predicate<VmState> p, Duration timeout)
            throws InterruptedException, java.util.concurrent.TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
            while (!p.test(state)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new java.util.concurrent.TimeoutException(
                            "VM " + vm + " still " + state + " after " + timeout.toMillis() + " ms");
                }
                changed.await(left, TimeUnit.NANOSECONDS);
            }
            return state;
        } finally {
            lock.unlock();
        }
    }

    private void publish(VmEvent event) {
        for (Consumer<VmEvent> l : listeners) {
            try {
                l.accept(event);
            } catch (RuntimeException e) {
                log.warn("VM {}: event listener failed on {}", vm, event, e);
            }
        }
    }
}

package io.qsup.vm;

import io.qsup.qmp.GuestAgentClient;
import io.qsup.qmp.QmpDisconnectedException;
import io.qsup.qmp.QmpException;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The stop ladder (DESIGN.md 5): ACPI {@code system_powerdown} re-sent every few seconds (with the guest agent's
 * {@code guest-shutdown} a second after the first press when the agent is connected), then QMP {@code quit}, then
 * SIGTERM, then SIGKILL, each within its share of the stop timeout. It ends a process and says which rung did it; the
 * VM's states are the controller's business.
 *
 * <p>Threading: {@link #climb} blocks the calling thread (the VM's ops thread) for up to the stop timeout and holds no
 * lock; it may be called from one thread at a time. The agent's {@code guest-shutdown} runs on a thread of its own
 * {@code vm-agent-shutdown NAME} with a deadline inside the powerdown rung's share, so it never holds the ladder up. The
 * {@code closing} supplier is polled between rungs so a qsupd
 * that exits leaves the VM alone.
 */
final class StopLadder {
    private static final Logger log = LoggerFactory.getLogger(StopLadder.class);
    private static final Duration POWERDOWN_RESEND = Duration.ofSeconds(3);
    private static final long POLL_MILLIS = 25;
    /** How long after the first press the agent's guest-shutdown follows, for a guest that did not heed it. */
    private static final Duration AGENT_AFTER = Duration.ofSeconds(1);
    /** The longest the agent's guest-shutdown may wait for a refusal; a guest that accepts sends nothing. */
    private static final Duration AGENT_DEADLINE = Duration.ofSeconds(5);

    /** Where the ladder begins. */
    enum Start { POWERDOWN, QUIT, SIGKILL }

    /**
     * How a climb ended.
     *
     * @param rung      the last rung tried, or null if none was needed
     * @param dead      true if the process is gone
     * @param abandoned true if qsupd began to exit mid-ladder and the climb stopped with the process alive
     */
    record Outcome(StopRung rung, boolean dead, boolean abandoned) {}

    private final String name;
    private final ProcessInspector inspector;
    private final BooleanSupplier closing;
    private final Consumer<StopRung> onRung;

    /**
     * @param onRung told each rung as it begins, on the climbing thread
     */
    StopLadder(String name, ProcessInspector inspector, BooleanSupplier closing, Consumer<StopRung> onRung) {
        this.name = name;
        this.inspector = inspector;
        this.closing = closing;
        this.onRung = onRung;
    }

    /**
     * Ends process {@code p}. The {@code timeout} counts from {@code requestedNanos}, so a request that waited in a
     * queue gets no extra time.
     *
     * @param ses          the QMP session, or null when the monitor is lost (the ladder starts at SIGTERM then)
     * @param mayPowerdown false when the guest cannot act on the power button (paused): skip that rung
     * @param agent        the guest agent, when it is connected, for {@code guest-shutdown} in the powerdown rung;
     *                     else null
     */
    Outcome climb(Start first, QmpSession ses, long p, boolean mayPowerdown, GuestAgentClient agent,
            long requestedNanos, Duration timeout) {
        long total = timeout.toNanos();
        long deadline = requestedNanos + total;
        long killShare = Math.min(Duration.ofSeconds(2).toNanos(), total / 10);
        long termShare = Math.min(Duration.ofSeconds(3).toNanos(), total / 6);
        long quitShare = Math.min(Duration.ofSeconds(5).toNanos(), total / 5);
        long termEnd = deadline - killShare;
        long quitEnd = termEnd - termShare;
        long powerdownEnd = quitEnd - quitShare;

        StopRung rung = null;
        boolean dead = !inspector.isAlive(p);
        if (!dead && first == Start.POWERDOWN && ses != null && mayPowerdown) {
            rung = begin(StopRung.POWERDOWN);
            // The agent's guest-shutdown follows the first press by a moment, inside this rung's share: a guest that
            // heeds the button is then reported as ended by powerdown, and only one that ignores it by agent.
            long now = System.nanoTime();
            long agentAt = now + Math.min(AGENT_AFTER.toNanos(), Math.max(0, (powerdownEnd - now) / 2));
            AgentShutdown[] viaAgent = new AgentShutdown[1];
            dead = powerdownRung(ses, p, powerdownEnd,
                    agent == null ? null : () -> viaAgent[0] = new AgentShutdown(agent, powerdownEnd), agentAt);
            if (dead && viaAgent[0] != null && viaAgent[0].accepted()) {
                rung = begin(StopRung.AGENT);
            }
        }
        if (!dead && closing.getAsBoolean()) {
            return new Outcome(rung, false, true);
        }
        if (!dead && first != Start.SIGKILL && ses != null) {
            rung = begin(StopRung.QUIT);
            try {
                ses.client.execute("quit", null, Duration.ofNanos(Math.max(quitEnd - System.nanoTime(), 1_000_000)));
            } catch (QmpException e) {
                log.info("VM {}: quit: {}", name, e.getMessage());
            }
            dead = awaitDeath(p, quitEnd);
        }
        if (!dead && closing.getAsBoolean()) {
            return new Outcome(rung, false, true);
        }
        if (!dead && first != Start.SIGKILL) {
            rung = begin(StopRung.SIGTERM);
            signal(p, ProcessInspector.Signal.TERM);
            dead = awaitDeath(p, termEnd);
        }
        if (!dead && closing.getAsBoolean()) {
            return new Outcome(rung, false, true);
        }
        if (!dead) {
            rung = begin(StopRung.SIGKILL);
            signal(p, ProcessInspector.Signal.KILL);
            dead = awaitDeath(p, Math.max(deadline, System.nanoTime() + Duration.ofMillis(500).toNanos()));
        }
        return new Outcome(rung, dead, false);
    }

    /** {@code guest-shutdown} on its own thread, bounded by the powerdown rung's end. */
    private final class AgentShutdown {
        private final AtomicBoolean accepted = new AtomicBoolean();
        private final Thread thread;

        AgentShutdown(GuestAgentClient agent, long end) {
            long left = end - System.nanoTime();
            Duration deadline = Duration.ofNanos(Math.max(1_000_000, Math.min(left, AGENT_DEADLINE.toNanos())));
            thread = Thread.ofVirtual().name("vm-agent-shutdown " + name).start(() -> {
                try {
                    agent.shutdown(deadline);
                    accepted.set(true);
                    log.info("VM {}: guest agent accepted guest-shutdown", name);
                } catch (QmpException e) {
                    log.info("VM {}: guest-shutdown: {}", name, e.getMessage());
                }
            });
        }

        /** After the VM died: whether the agent took the request (waits briefly for its thread to see the end). */
        boolean accepted() {
            try {
                thread.join(Duration.ofMillis(500));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return accepted.get();
        }
    }

    private StopRung begin(StopRung rung) {
        onRung.accept(rung);
        return rung;
    }

    /**
     * Presses the power button now and every few seconds until the process dies or the rung's time is up; runs
     * {@code agentCall} (when not null) once, at {@code agentAt}, if the process still lives then.
     */
    private boolean powerdownRung(QmpSession ses, long p, long end, Runnable agentCall, long agentAt) {
        boolean agentSent = agentCall == null;
        while (System.nanoTime() < end && !closing.getAsBoolean()) {
            try {
                ses.client.execute("system_powerdown", null,
                        Duration.ofNanos(Math.max(Math.min(end - System.nanoTime(), Duration.ofSeconds(2).toNanos()),
                                1_000_000)));
            } catch (QmpException e) {
                log.info("VM {}: system_powerdown: {}", name, e.getMessage());
                if (e instanceof QmpDisconnectedException) {
                    return awaitDeath(p, end);
                }
            }
            long nextPress = Math.min(end, System.nanoTime() + POWERDOWN_RESEND.toNanos());
            while (true) {
                if (awaitDeath(p, agentSent ? nextPress : Math.min(nextPress, agentAt))) {
                    return true;
                }
                if (agentSent || System.nanoTime() < agentAt || closing.getAsBoolean()) {
                    break;
                }
                agentCall.run();
                agentSent = true;
            }
        }
        return !inspector.isAlive(p);
    }

    /**
     * Waits until {@code p} is dead (a zombie counts as dead) or the deadline passes; true if dead. The first looks
     * come quickly (1, 2, 4, ... ms, then every {@value #POLL_MILLIS} ms): a killed QEMU is gone within about 5 ms,
     * and a flat 25 ms poll made every {@code qsup kill} wait 25 ms for nothing.
     */
    boolean awaitDeath(long p, long deadlineNanos) {
        if (p <= 0) {
            return true;
        }
        long pause = 1;
        while (inspector.isAlive(p)) {
            LoopHealth.progress(); // a ladder on a VM's ops thread is busy, not stuck
            if (System.nanoTime() >= deadlineNanos) {
                return false;
            }
            try {
                Thread.sleep(pause);
                pause = Math.min(POLL_MILLIS, pause * 2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return !inspector.isAlive(p);
            }
        }
        return true;
    }

    /** Sends a signal, logging instead of failing: the next rung or the death check decides what follows. */
    void signal(long p, ProcessInspector.Signal sig) {
        try {
            inspector.signal(p, sig);
        } catch (IOException e) {
            log.warn("VM {}: cannot send {} to pid {}: {}", name, sig, p, e.getMessage());
        }
    }
}

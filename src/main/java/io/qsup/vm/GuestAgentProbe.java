package io.qsup.vm;

import io.qsup.qmp.GuestAgentClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches one QEMU's guest agent: {@code guest-ping} on a schedule, the agent's state ({@link AgentState}) with a
 * {@link VmEvent.AgentChange} on every change, and the guest's interfaces, refreshed when the agent connects, often
 * until the guest has an address, and then now and then. One instance per QEMU process: a new QEMU gets a new probe.
 *
 * <p>Guest-hang detection: an agent that answered and then misses its pings for {@code guest-hang-after}, while the
 * QMP liveness probe still gets answers and the vCPUs run, means a hung guest OS rather than a hung QEMU. The VM is
 * then flagged {@code guest-unresponsive} ({@link VmEvent.GuestHangChange}) and the controller is told, once per
 * episode, so that {@code guest-hang-action: restart} can end it.
 *
 * <p>Threading: one virtual thread {@code vm-agent NAME} (the agent's socket is a JDK channel) runs the loop
 * and is the only writer of the volatile state fields; any thread reads them. {@link #client()} is thread-safe
 * and may be used by others (the stop ladder, exec) while the loop runs; their calls queue behind a ping for at
 * most their own deadline.
 */
final class GuestAgentProbe implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GuestAgentProbe.class);
    /** Pings while the agent has not answered yet: often, so the guest's address shows soon after boot. */
    private static final Duration EARLY_INTERVAL = Duration.ofSeconds(1);
    /**
     * Refreshes of the interfaces while the guest has no address yet, in the first {@link #ADDRESS_WAIT} of answers
     * (a DHCP lease comes within seconds of boot), then once a minute: a guest without a NIC never gets an address,
     * and asking it every ping would double the agent's round trips for good.
     */
    private static final Duration ADDRESSLESS_REFRESH = Duration.ofSeconds(2);
    private static final Duration ADDRESS_WAIT = Duration.ofSeconds(60);
    private static final Duration ADDRESS_REFRESH = Duration.ofSeconds(60);

    private final String name;
    private final VmStateMachine sm;
    private final GuestAgentClient client;
    private final Duration interval;
    private final Duration timeout;
    /** True while the vCPUs are paused: an agent cannot answer then, and that says nothing about the guest. */
    private final BooleanSupplier paused;
    private final Thread thread;
    private volatile AgentState state = AgentState.ABSENT;
    private volatile List<GuestInterface> interfaces = List.of();
    /** When the agent last answered, or null. */
    private volatile Instant lastAnswer;
    /** When the current run of missed pings began, or null while the agent answers. */
    private volatile Instant missingSince;
    private volatile boolean closed;
    private volatile boolean guestHung;
    private final Supplier<VmSpec> spec;
    private final Consumer<String> onGuestHang;

    /**
     * @param paused      true while the vCPUs are paused
     * @param onGuestHang told (on the probe's thread, must only queue work) when the guest starts to count as hung
     */
    GuestAgentProbe(String name, Path socket, VmStateMachine sm, Duration interval, Duration timeout,
            BooleanSupplier paused, Supplier<VmSpec> spec, Consumer<String> onGuestHang) {
        this.spec = spec;
        this.onGuestHang = onGuestHang;
        this.name = name;
        this.sm = sm;
        this.client = new GuestAgentClient(name, new QmpEndpoint.Unix(socket));
        this.interval = interval;
        this.timeout = timeout;
        this.paused = paused;
        this.thread = Thread.ofVirtual().name("vm-agent " + name).unstarted(this::loop);
    }

    void start() {
        thread.start();
    }

    AgentState state() {
        return state;
    }

    List<GuestInterface> interfaces() {
        return interfaces;
    }

    /** When the current run of missed pings began (the agent had answered before), or null. */
    Instant missingSince() {
        return missingSince;
    }

    GuestAgentClient client() {
        return client;
    }

    private void loop() {
        long nextRefresh = 0;
        long answeringSince = -1;
        while (!closed) {
            if (paused.getAsBoolean()) {
                missingSince = null; // a paused guest cannot answer; its silence then says nothing
            } else {
                boolean answered = ping();
                long now = System.nanoTime();
                if (answered && answeringSince < 0) {
                    answeringSince = now;
                }
                if (answered && now >= nextRefresh) {
                    refreshInterfaces();
                    boolean waiting = GuestInterface.primaryAddress(interfaces) == null
                            && now - answeringSince < ADDRESS_WAIT.toNanos();
                    nextRefresh = System.nanoTime() + (waiting ? ADDRESSLESS_REFRESH : ADDRESS_REFRESH).toNanos();
                }
                if (!answered) {
                    nextRefresh = 0; // the agent may come back in a rebooted guest with new addresses
                    answeringSince = -1;
                }
            }
            try {
                Thread.sleep(ProbeClock.untilNext(System.nanoTime(), state == AgentState.ABSENT ? EARLY_INTERVAL
                        : interval));
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private boolean ping() {
        try {
            client.ping(timeout);
            lastAnswer = Instant.now();
            missingSince = null;
            change(AgentState.CONNECTED, "guest-ping answered");
            if (guestHung) {
                guestHung = false;
                log.info("VM {}: the guest agent answers again; the guest is no longer flagged unresponsive", name);
                sm.announce(new VmEvent.GuestHangChange(name, false, "guest-ping answered", Instant.now()));
            }
            return true;
        } catch (QmpException e) {
            if (closed) {
                return false;
            }
            log.debug("VM {}: guest agent: {}", name, e.getMessage());
            if (lastAnswer != null) {
                if (missingSince == null) {
                    missingSince = Instant.now();
                }
                change(AgentState.UNRESPONSIVE, e.getMessage());
                checkGuestHang();
            }
            return false;
        }
    }

    /** The agent is silent: a hung guest OS if that lasted guest-hang-after while QMP answers and the vCPUs run. */
    private void checkGuestHang() {
        Instant since = missingSince;
        Duration after = spec.get().guestHangAfter();
        if (guestHung || since == null || after == null || sm.unresponsive() || sm.state() != VmState.RUNNING
                || Duration.between(since, Instant.now()).compareTo(after) < 0) {
            return;
        }
        guestHung = true;
        String detail = "the guest agent has not answered guest-ping for " + after.toSeconds()
                + " s while QEMU answers QMP";
        log.warn("VM {}: guest unresponsive: {}", name, detail);
        sm.announce(new VmEvent.GuestHangChange(name, true, detail, Instant.now()));
        onGuestHang.accept(detail);
    }

    /** Whether the guest counts as hung right now. */
    boolean guestUnresponsive() {
        return guestHung;
    }

    private void refreshInterfaces() {
        try {
            interfaces = GuestInterface.fromAgent(client.networkInterfaces(timeout));
        } catch (QmpErrorException e) {
            log.info("VM {}: guest agent cannot list interfaces: {}", name, e.getMessage());
        } catch (QmpException e) {
            log.debug("VM {}: guest-network-get-interfaces: {}", name, e.getMessage());
        }
    }

    private void change(AgentState to, String detail) {
        AgentState from = state;
        if (from == to) {
            return;
        }
        state = to;
        log.info("VM {}: guest agent {} -> {} ({})", name, from, to, detail);
        sm.announce(new VmEvent.AgentChange(name, to, detail, Instant.now()));
    }

    /** Ends the loop and closes the agent socket; the state stays as last seen. */
    @Override
    public void close() {
        closed = true;
        if (guestHung) {
            guestHung = false;
            sm.announce(new VmEvent.GuestHangChange(name, false, "QEMU ended", Instant.now()));
        }
        thread.interrupt();
        client.close();
    }
}

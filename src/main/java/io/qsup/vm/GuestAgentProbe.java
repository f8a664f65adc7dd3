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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches one QEMU's guest agent: {@code guest-ping} on a schedule, the agent's state ({@link AgentState}) with a
 * {@link VmEvent.AgentChange} on every change, and the guest's interfaces, refreshed when the agent connects, often
 * until the guest has an address, and then now and then. One instance per QEMU process: a new QEMU gets a new probe.
 *
 * <p>Threading: one platform thread {@code vm-agent NAME} (junixsocket reads run on platform threads) runs the loop
 * and is the only writer of the volatile state fields; any thread reads them. {@link #client()} is thread-safe
 * and may be used by others (the stop ladder, exec) while the loop runs; their calls queue behind a ping for at
 * most their own deadline.
 */
final class GuestAgentProbe implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GuestAgentProbe.class);
    /** Pings while the agent has not answered yet: often, so the guest's address shows soon after boot. */
    private static final Duration EARLY_INTERVAL = Duration.ofSeconds(1);
    /** Refreshes of the interfaces while the guest has no address yet, then once it has one. */
    private static final Duration ADDRESSLESS_REFRESH = Duration.ofSeconds(2);
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

    GuestAgentProbe(String name, Path socket, VmStateMachine sm, Duration interval, Duration timeout,
            BooleanSupplier paused) {
        this.name = name;
        this.sm = sm;
        this.client = new GuestAgentClient(name, new QmpEndpoint.Unix(socket));
        this.interval = interval;
        this.timeout = timeout;
        this.paused = paused;
        this.thread = Thread.ofPlatform().name("vm-agent " + name).daemon(true).unstarted(this::loop);
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
        while (!closed) {
            if (!paused.getAsBoolean()) {
                boolean answered = ping();
                if (answered && System.nanoTime() >= nextRefresh) {
                    refreshInterfaces();
                    nextRefresh = System.nanoTime() + (GuestInterface.primaryAddress(interfaces) == null
                            ? ADDRESSLESS_REFRESH : ADDRESS_REFRESH).toNanos();
                }
                if (!answered) {
                    nextRefresh = 0; // the agent may come back in a rebooted guest with new addresses
                }
            }
            try {
                Thread.sleep(state == AgentState.ABSENT ? EARLY_INTERVAL : interval);
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
            }
            return false;
        }
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
        thread.interrupt();
        client.close();
    }
}

package io.qsup.control;

import io.qsup.config.DaemonSettings;
import io.qsup.supervisor.Supervisor;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The daemon's control plane, wired: the command table over the supervisor, the event hub fed by the supervisor's
 * events, and the socket server. One per daemon.
 */
public final class DaemonControl implements AutoCloseable {
    private final ControlServer server;
    private final AutoCloseable feed;

    private DaemonControl(ControlServer server, AutoCloseable feed) {
        this.server = server;
        this.feed = feed;
    }

    /**
     * Binds the control socket and starts serving.
     *
     * @throws IOException when the socket cannot be bound
     */
    public static DaemonControl start(DaemonSettings settings, Supervisor supervisor) throws IOException {
        return start(settings, supervisor, null);
    }

    /**
     * Binds the control socket and starts serving; {@code cluster} is null outside cluster mode.
     *
     * @throws IOException when the socket cannot be bound
     */
    public static DaemonControl start(DaemonSettings settings, Supervisor supervisor, ClusterPort cluster)
            throws IOException {
        EventHub hub = new EventHub();
        AutoCloseable feed = supervisor.addListener(e -> hub.publish(SupervisorEvents.toControlEvent(e)));
        Map<String, ControlCommand> table = new HashMap<>();
        EventCommands.register(table, hub);
        VmCommands.register(table, supervisor, settings, cluster);
        ClusterCommands.register(table, cluster);
        StatsCommands.register(table, supervisor);
        SchemaCommands.register(table, supervisor, settings);
        ControlServer server = new ControlServer(settings.controlSocket(), settings.controlGroup(), table, hub,
                ControlServer.Limits.defaults().withMaxConnections(settings.controlMaxConnections()));
        List<String> unserved = CommandTable.all().stream().map(CommandSpec::name)
                .filter(n -> server.command(n) == null).toList();
        if (!unserved.isEmpty()) {
            closeQuietly(feed);
            throw new IllegalStateException("declared in CommandTable but not served: " + unserved);
        }
        try {
            server.start();
        } catch (IOException e) {
            closeQuietly(feed);
            throw e;
        }
        return new DaemonControl(server, feed);
    }

    public ControlServer server() {
        return server;
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            // removing a listener cannot fail in a way worth reporting
        }
    }

    @Override
    public void close() {
        closeQuietly(feed);
        server.close();
    }
}

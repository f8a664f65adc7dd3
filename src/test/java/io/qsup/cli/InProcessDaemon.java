package io.qsup.cli;

import io.qsup.config.DaemonSettings;
import io.qsup.control.DaemonControl;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import java.nio.file.Path;

/**
 * qsupd's supervisor and control socket in the test's own JVM, over the VMs a {@link SupervisorFixture} holds: the
 * definitions are loaded, the control socket listens, and autostart VMs are started, as qsupd does at start-up. The
 * CLI tests run the real {@code qsup} against {@link #socket()}. {@link #close()} closes the socket, then the fixture
 * (which stops every VM).
 */
final class InProcessDaemon implements AutoCloseable {
    private final SupervisorFixture fixture;
    private final Supervisor supervisor;
    private final DaemonControl control;
    private final Path socket;

    private InProcessDaemon(SupervisorFixture fixture, Supervisor supervisor, DaemonControl control, Path socket) {
        this.fixture = fixture;
        this.supervisor = supervisor;
        this.control = control;
        this.socket = socket;
    }

    /** Starts the daemon over the fixture's definitions; on failure the fixture is closed too. */
    static InProcessDaemon start(SupervisorFixture fixture) throws Exception {
        DaemonControl control = null;
        try {
            DaemonSettings settings = fixture.settings();
            Supervisor sup = fixture.supervisor(Supervisor.Options.defaults());
            sup.loadInitial();
            control = DaemonControl.start(settings, sup);
            sup.startup();
            return new InProcessDaemon(fixture, sup, control, settings.controlSocket());
        } catch (Exception | Error e) {
            if (control != null) {
                control.close();
            }
            fixture.close();
            throw e;
        }
    }

    Supervisor supervisor() {
        return supervisor;
    }

    Path socket() {
        return socket;
    }

    SupervisorFixture fixture() {
        return fixture;
    }

    /** Closes the control socket alone, as a daemon going away does to its clients; the VMs run on. */
    void closeControlSocket() {
        control.close();
    }

    @Override
    public void close() throws Exception {
        try {
            control.close();
        } finally {
            fixture.close();
        }
    }
}

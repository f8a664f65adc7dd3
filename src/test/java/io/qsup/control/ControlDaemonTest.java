package io.qsup.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.config.DaemonSettings;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The control socket of a real supervisor with a real VM, driven by a raw QMP-speaking client. */
class ControlDaemonTest {
    private SupervisorFixture fixture;
    private DaemonControl control;
    private Supervisor sup;
    private DaemonSettings settings;

    @BeforeEach
    void start() throws Exception {
        fixture = new SupervisorFixture(2);
        fixture.writeVm("web1", "restart: on-failure\nrestart-delay: 1s");
        settings = fixture.settings();
        sup = fixture.supervisor(Supervisor.Options.defaults());
        sup.loadInitial();
        control = DaemonControl.start(settings, sup);
        sup.startup();
        sup.controller("web1").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
    }

    @AfterEach
    void stop() throws Exception {
        if (control != null) {
            control.close();
        }
        fixture.close();
    }

    @Test
    void aSubscriberSeesTheCrashAndTheRestartWhenQemuIsKilled() throws Exception {
        try (RawControlClient c = new RawControlClient(settings.controlSocket()).negotiated()) {
            JsonNode vm = c.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}").path("return");
            long pid = vm.path("pid").asLong();
            assertThat(pid).isPositive();
            c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":[\"web1\"],"
                    + "\"events\":[\"VM_STATE_CHANGED\",\"VM_RESTART_SCHEDULED\"]}}");

            new ProcessInspector().signal(pid, ProcessInspector.Signal.KILL);

            List<JsonNode> seen = new ArrayList<>();
            JsonNode e;
            do {
                e = c.nextEvent();
                assertThat(e).as("event stream ended early; seen %s", seen).isNotNull();
                seen.add(e);
            } while (!(e.path("event").asText().equals("VM_STATE_CHANGED")
                    && e.path("data").path("new").asText().equals("running")));

            JsonNode crash = seen.get(0);
            assertThat(crash.path("event").asText()).isEqualTo("VM_STATE_CHANGED");
            assertThat(crash.path("data").path("old").asText()).isEqualTo("running");
            assertThat(crash.path("data").path("new").asText()).isEqualTo("backoff");
            assertThat(crash.path("data").path("cause").asText()).isEqualTo("crashed");
            assertThat(crash.path("data").path("detail").asText()).contains("QMP closed without SHUTDOWN");
            assertThat(seen).anySatisfy(x -> {
                assertThat(x.path("event").asText()).isEqualTo("VM_RESTART_SCHEDULED");
                assertThat(x.path("data").path("delay-seconds").asDouble()).isEqualTo(1.0);
            });
            long newPid = c.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}")
                    .path("return").path("pid").asLong();
            assertThat(newPid).isPositive().isNotEqualTo(pid);
        }
    }

    @Test
    void qmpPassthroughAndForwardedQemuEvents() throws Exception {
        try (RawControlClient c = new RawControlClient(settings.controlSocket()).negotiated()) {
            c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"events\":[\"VM_QMP_EVENT\"]}}");
            JsonNode r = c.command("{\"execute\":\"vm-qmp\",\"arguments\":{\"name\":\"web1\",\"command\":\"stop\"}}");
            assertThat(r.has("return")).as(r.toString()).isTrue();
            JsonNode e = c.nextEvent();
            assertThat(e.path("event").asText()).isEqualTo("VM_QMP_EVENT");
            assertThat(e.path("data").path("event").asText()).isEqualTo("STOP");
            assertThat(e.path("data").path("vm").asText()).isEqualTo("web1");

            JsonNode bad = c.command("{\"execute\":\"vm-qmp\",\"arguments\":{\"name\":\"web1\","
                    + "\"command\":\"no-such-qemu-command\"}}");
            assertThat(bad.path("error").path("class").asText()).isEqualTo("CommandNotFound");

            JsonNode missing = c.command("{\"execute\":\"vm-start\",\"arguments\":{\"name\":\"ghost\"}}");
            assertThat(missing.path("error").path("class").asText()).isEqualTo("VmNotFound");
            JsonNode noName = c.command("{\"execute\":\"vm-stop\",\"arguments\":{}}");
            assertThat(noName.path("error").path("desc").asText()).isEqualTo("Parameter 'name' is missing");
            JsonNode badWait = c.command("{\"execute\":\"vm-stop\",\"arguments\":{\"name\":\"web1\",\"wait\":\"yes\"}}");
            assertThat(badWait.path("error").path("desc").asText())
                    .isEqualTo("Invalid parameter type for 'wait', expected: boolean");

            JsonNode daemon = c.command("{\"execute\":\"query-daemon\"}").path("return");
            assertThat(daemon.path("vm-count").asInt()).isEqualTo(1);
            assertThat(daemon.path("control-socket").asText()).isEqualTo(settings.controlSocket().toString());

            JsonNode commands = c.command("{\"execute\":\"query-commands\"}").path("return");
            List<String> names = new ArrayList<>();
            commands.forEach(n -> names.add(n.path("name").asText()));
            assertThat(names).contains("qmp_capabilities", "query-vms", "vm-start", "vm-qmp", "daemon-reload",
                    "event-subscribe", "query-events");
        }
    }
}

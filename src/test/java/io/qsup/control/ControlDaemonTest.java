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
    void aStockClientSeesTheCrashWithoutSubscribingAndFiltersAndUnsubscribeHold() throws Exception {
        try (RawControlClient stock = new RawControlClient(settings.controlSocket()).negotiated();
                RawControlClient filtered = new RawControlClient(settings.controlSocket()).negotiated();
                RawControlClient quiet = new RawControlClient(settings.controlSocket()).negotiated()) {
            JsonNode vm = stock.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}").path("return");
            long pid = vm.path("pid").asLong();
            assertThat(pid).isPositive();
            filtered.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"vms\":[\"web1\"],"
                    + "\"events\":[\"VM_STATE_CHANGED\",\"VM_RESTART_SCHEDULED\"]}}");
            filtered.events.clear(); // anything from before the filter applied
            assertThat(quiet.command("{\"execute\":\"event-unsubscribe\"}").has("return")).isTrue();
            quiet.events.clear();

            new ProcessInspector().signal(pid, ProcessInspector.Signal.KILL);

            // like qmp-shell or QEMUMonitorProtocol.pull_event(): negotiate, then read
            List<JsonNode> stockSaw = readUntilRunningAgain(stock);
            JsonNode crash = stockSaw.stream().filter(e -> e.path("event").asText().equals("VM_STATE_CHANGED"))
                    .findFirst().orElseThrow();
            assertThat(crash.path("data").path("vm").asText()).isEqualTo("web1");
            assertThat(crash.path("data").path("old").asText()).isEqualTo("running");
            assertThat(crash.path("data").path("new").asText()).isEqualTo("backoff");
            assertThat(crash.path("data").path("cause").asText()).isEqualTo("crashed");
            assertThat(crash.path("data").path("detail").asText()).contains("QMP closed without SHUTDOWN");

            List<JsonNode> seen = readUntilRunningAgain(filtered);
            assertThat(seen).allSatisfy(x -> assertThat(x.path("event").asText())
                    .isIn("VM_STATE_CHANGED", "VM_RESTART_SCHEDULED"));
            assertThat(seen.get(0).path("data").path("cause").asText()).isEqualTo("crashed");
            assertThat(seen).anySatisfy(x -> {
                assertThat(x.path("event").asText()).isEqualTo("VM_RESTART_SCHEDULED");
                assertThat(x.path("data").path("delay-seconds").asDouble()).isEqualTo(1.0);
            });

            // every event of the crash and restart was queued before the reply to this
            JsonNode r = quiet.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}");
            assertThat(quiet.events).as("events after event-unsubscribe").isEmpty();
            assertThat(r.path("return").path("pid").asLong()).isPositive().isNotEqualTo(pid);
        }
    }

    /** The events a client reads until web1 is running again, in order. */
    private static List<JsonNode> readUntilRunningAgain(RawControlClient c) throws Exception {
        List<JsonNode> seen = new ArrayList<>();
        JsonNode e;
        do {
            e = c.nextEvent();
            assertThat(e).as("event stream ended early; seen %s", seen).isNotNull();
            seen.add(e);
        } while (!(e.path("event").asText().equals("VM_STATE_CHANGED")
                && e.path("data").path("new").asText().equals("running")));
        return seen;
    }

    @Test
    void qmpPassthroughAndForwardedQemuEvents() throws Exception {
        try (RawControlClient c = new RawControlClient(settings.controlSocket()).negotiated()) {
            c.command("{\"execute\":\"event-subscribe\",\"arguments\":{\"events\":[\"VM_QMP_EVENT\"]}}");
            c.events.clear(); // anything from before the filter applied
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

            String stateBefore = c.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}")
                    .path("return").path("state").asText();
            JsonNode wrongType = c.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":5}}");
            assertThat(wrongType.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(wrongType.path("error").path("desc").asText())
                    .isEqualTo("Invalid parameter type for 'name', expected: string");
            JsonNode typo = c.command("{\"execute\":\"vm-stop\",\"arguments\":{\"name\":\"web1\",\"timout\":30}}");
            assertThat(typo.path("error").path("desc").asText()).isEqualTo("Parameter 'timout' is unexpected");
            JsonNode badTimeout = c.command("{\"execute\":\"vm-stop\",\"arguments\":{\"name\":\"web1\",\"timeout\":-1}}");
            assertThat(badTimeout.path("error").path("desc").asText())
                    .isEqualTo("Parameter 'timeout' expects a positive number of seconds");
            JsonNode badBandwidth = c.command("{\"execute\":\"vm-migrate\",\"arguments\":{\"name\":\"web1\","
                    + "\"to\":\"h2\",\"bandwidth\":0}}");
            assertThat(badBandwidth.path("error").path("desc").asText())
                    .isEqualTo("Parameter 'bandwidth' expects a positive number");
            JsonNode noCluster = c.command("{\"execute\":\"vm-migrate\",\"arguments\":{\"name\":\"web1\","
                    + "\"to\":\"h2\"}}");
            assertThat(noCluster.path("error").path("desc").asText()).startsWith("cluster mode is off on this host");
            JsonNode noDrain = c.command("{\"execute\":\"host-drain\",\"arguments\":{\"host\":\"h1\"}}");
            assertThat(noDrain.path("error").path("desc").asText()).startsWith("cluster mode is off on this host");
            assertThat(c.command("{\"execute\":\"query-vm\",\"arguments\":{\"name\":\"web1\"}}")
                    .path("return").path("state").asText()).as("refused requests did nothing").isEqualTo(stateBefore);

            JsonNode daemon = c.command("{\"execute\":\"query-daemon\"}").path("return");
            assertThat(daemon.path("vm-count").asInt()).isEqualTo(1);
            assertThat(daemon.path("control-socket").asText()).isEqualTo(settings.controlSocket().toString());

            // qsupd serves exactly the declared commands, and describes them from the same table
            JsonNode commands = c.command("{\"execute\":\"query-commands\"}").path("return");
            List<String> names = new ArrayList<>();
            commands.forEach(n -> names.add(n.path("name").asText()));
            assertThat(names).containsExactlyElementsOf(CommandTable.all().stream().map(CommandSpec::name).toList());
            assertThat(names).contains("qmp_capabilities", "query-commands", "vm-stop", "event-subscribe");
            JsonNode described = c.command("{\"execute\":\"query-command-arguments\"}").path("return");
            assertThat(described).isEqualTo(CommandTable.toJson(CommandTable.all()));
            JsonNode stop = null;
            for (JsonNode d : described) {
                if (d.path("name").asText().equals("vm-stop")) {
                    stop = d;
                }
            }
            assertThat(stop).isNotNull();
            assertThat(stop.path("arguments").get(0).path("name").asText()).isEqualTo("name");
            assertThat(stop.path("arguments").get(0).path("required").asBoolean()).isTrue();
        }
    }
}

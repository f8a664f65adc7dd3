package io.qsup.cli;

import static io.qsup.cli.CliRun.qsup;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.vm.AgentState;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The guest agent seen through {@code qsup}: real QEMU, the test guest with real qemu-ga and a user-mode NIC whose
 * DHCP lease comes from QEMU's slirp: addresses in list and status, and {@code qsup exec}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class GuestAgentListTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private SupervisorFixture fixture;
    private InProcessDaemon daemon;
    private Supervisor sup;
    private Path socket;

    @BeforeAll
    void startDaemon() throws Exception {
        fixture = new SupervisorFixture(2);
        fixture.writeVm("web", "networks:\n  - type: user\nstop-timeout: 20s");
        fixture.writeVm("plain", "guest-agent: false\nstop-timeout: 20s");
        daemon = InProcessDaemon.start(fixture);
        sup = daemon.supervisor();
        socket = daemon.socket();
        sup.controller("web").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
        sup.controller("plain").orElseThrow().await(s -> s == VmState.RUNNING, Duration.ofSeconds(60));
    }

    @AfterAll
    void stopDaemon() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
    }

    private static JsonNode json(CliRun r) throws Exception {
        assertThat(r.code()).as(r.toString()).isZero();
        return JSON.readTree(r.out());
    }

    @Test
    @Order(1)
    void listShowsTheGuestsAddressSoonAfterBoot() throws Exception {
        fixture.readyConsole("web", Duration.ofSeconds(60)).close();
        long booted = System.nanoTime();
        String row = null;
        while (System.nanoTime() - booted < Duration.ofSeconds(20).toNanos()) {
            CliRun list = qsup(socket, "list");
            assertThat(list.code()).as(list.toString()).isZero();
            row = list.out().lines().filter(l -> l.startsWith("web ")).findFirst().orElseThrow();
            if (row.contains("10.0.2.15")) {
                break;
            }
            Thread.sleep(250);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - booted);
        assertThat(row).as("qsup list row of web").contains("10.0.2.15");
        assertThat(took).as("address shown after the guest's ready line").isLessThan(Duration.ofSeconds(10));
        String header = qsup(socket, "list").out().lines().findFirst().orElseThrow();
        assertThat(header).contains("IP");
    }

    @Test
    @Order(2)
    void statusJsonListsTheInterfacesWithTheirMacs() throws Exception {
        JsonNode vm = json(qsup(socket, "status", "web", "--json"));
        assertThat(vm.path("agent").asText()).isEqualTo("connected");
        assertThat(vm.path("ip").asText()).isEqualTo("10.0.2.15");
        List<String> names = new ArrayList<>();
        JsonNode eth = null;
        for (JsonNode i : vm.path("interfaces")) {
            names.add(i.path("name").asText());
            if (i.path("name").asText().equals("eth0")) {
                eth = i;
            }
        }
        assertThat(names).contains("lo", "eth0");
        assertThat(eth.path("mac").asText()).matches("(?i)52:54:00(:[0-9a-f]{2}){3}");
        assertThat(eth.path("addresses").toString()).contains("10.0.2.15/24");

        CliRun human = qsup(socket, "status", "web");
        assertThat(human.out()).contains("agent:").contains("connected").contains("eth0").contains("10.0.2.15/24");
    }

    @Test
    @Order(3)
    void aVmWithoutTheChannelHasNoAgentAndTheConnectIsAnnounced() throws Exception {
        JsonNode vm = json(qsup(socket, "status", "plain", "--json"));
        assertThat(vm.path("agent").asText()).isEqualTo("absent");
        assertThat(vm.path("ip").isNull()).isTrue();
        assertThat(fixture.events).anySatisfy(e -> assertThat(e).isInstanceOfSatisfying(VmEvent.AgentChange.class,
                a -> {
                    assertThat(a.vm()).isEqualTo("web");
                    assertThat(a.state()).isEqualTo(AgentState.CONNECTED);
                }));
        assertThat(fixture.events).noneSatisfy(e -> assertThat(e).isInstanceOfSatisfying(VmEvent.AgentChange.class,
                a -> assertThat(a.vm()).isEqualTo("plain")));
    }

    /** {@code qsup --socket S exec ARGS}: the socket goes first, since everything after "--" is the guest's. */
    private CliRun exec(String... args) {
        List<String> all = new ArrayList<>(List.of("--socket", socket.toString(), "exec"));
        all.addAll(List.of(args));
        return CliRun.qsupRaw(all.toArray(String[]::new));
    }

    @Test
    @Order(4)
    void execPrintsBothStreamsAndExitsWithTheGuestCommandsCode() throws Exception {
        CliRun r = exec("web", "--", "sh", "-c", "echo out; echo err >&2; exit 3");
        assertThat(r.code()).as(r.toString()).isEqualTo(3);
        assertThat(r.out()).isEqualTo("out\n");
        assertThat(r.err()).isEqualTo("err\n");

        CliRun ok = exec("web", "--", "cat", "/proc/sys/kernel/hostname");
        assertThat(ok.code()).as(ok.toString()).isZero();
    }

    @Test
    @Order(5)
    void execTimesOutAndGivesAClearErrorWithoutAnAgent() throws Exception {
        CliRun slow = exec("web", "--timeout", "1s", "--", "sleep", "30");
        assertThat(slow.code()).as(slow.toString()).isEqualTo(124);
        assertThat(slow.err()).contains("did not end within 1s");

        CliRun none = exec("plain", "--", "true");
        assertThat(none.code()).as(none.toString()).isEqualTo(ExitCodes.ERROR);
        assertThat(none.err()).contains("guest agent is absent").contains("guest-agent: false");
    }
}

package io.qsup.vm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class VmStateMachineTest {

    @Test
    void everyChangeIsPublishedWithFromToAndCause() throws Exception {
        VmStateMachine sm = new VmStateMachine("web1");
        List<VmEvent> events = new ArrayList<>();
        sm.addListener(events::add);

        sm.setState(VmState.STARTING, Cause.OPERATOR_START, "");
        sm.setState(VmState.RUNNING, Cause.LAUNCHED, "pid 7");
        sm.setState(VmState.STOPPED, Cause.CRASHED, "pid 7 died");

        assertThat(events).hasSize(3).allSatisfy(e -> assertThat(e.vm()).isEqualTo("web1"));
        VmEvent.StateChange last = (VmEvent.StateChange) events.get(2);
        assertThat(last.from()).isEqualTo(VmState.RUNNING);
        assertThat(last.to()).isEqualTo(VmState.STOPPED);
        assertThat(last.cause()).isEqualTo(Cause.CRASHED);
        assertThat(last.detail()).isEqualTo("pid 7 died");
        assertThat(sm.state()).isEqualTo(VmState.STOPPED);
    }

    @Test
    void illegalMoveIsRejectedAndNamesBothStates() {
        VmStateMachine sm = new VmStateMachine("db");
        List<VmEvent> events = new ArrayList<>();
        sm.addListener(events::add);

        assertThatThrownBy(() -> sm.setState(VmState.STOPPING, Cause.OPERATOR_STOP, ""))
                .isInstanceOfSatisfying(IllegalTransitionException.class, e -> {
                    assertThat(e.from()).isEqualTo(VmState.STOPPED);
                    assertThat(e.to()).isEqualTo(VmState.STOPPING);
                })
                .hasMessageContaining("db").hasMessageContaining("stopped -> stopping");
        assertThat(sm.state()).isEqualTo(VmState.STOPPED);
        assertThat(events).isEmpty();
    }

    @Test
    void failedIsLeftOnlyByStartOrReset() {
        assertThat(Transitions.from(VmState.FAILED)).containsExactlyInAnyOrder(VmState.STARTING, VmState.STOPPED);
        assertThat(Transitions.allowed(VmState.FAILED, VmState.BACKOFF)).isFalse();
        assertThat(Transitions.allowed(VmState.STOPPING, VmState.RUNNING)).isFalse();
        for (VmState s : VmState.values()) {
            assertThat(Transitions.allowed(s, s)).as("self transition of %s", s).isFalse();
        }
    }

    @Test
    void unresponsiveFlagPublishesOnlyFlipsAndClearsWhenProcessEnds() {
        VmStateMachine sm = new VmStateMachine("web1");
        List<VmEvent> events = new ArrayList<>();
        sm.setState(VmState.STARTING, Cause.OPERATOR_START, "");
        sm.setState(VmState.RUNNING, Cause.LAUNCHED, "");
        sm.addListener(events::add);

        sm.setUnresponsive(true, "query-status timed out after 2000 ms");
        sm.setUnresponsive(true, "again");
        assertThat(events).hasSize(1);
        assertThat(sm.unresponsive()).isTrue();

        sm.setState(VmState.STOPPED, Cause.CRASHED, "pid 7 died");
        assertThat(sm.unresponsive()).isFalse();
    }

    @Test
    void restartPendingKeepsTheChangedKeys() {
        VmStateMachine sm = new VmStateMachine("web1");
        List<VmEvent> events = new ArrayList<>();
        sm.addListener(events::add);
        sm.setRestartPending(List.of("memory", "cpus"));
        assertThat(sm.restartPendingKeys()).containsExactly("memory", "cpus");
        assertThat(events).singleElement().isInstanceOfSatisfying(VmEvent.RestartPendingChange.class,
                e -> assertThat(e.changedKeys()).containsExactly("memory", "cpus"));
    }

    @Test
    void compareAndSetMovesOnlyFromTheExpectedState() {
        VmStateMachine sm = new VmStateMachine("web1");
        assertThat(sm.compareAndSet(VmState.RUNNING, VmState.STOPPING, Cause.OPERATOR_STOP, "")).isFalse();
        assertThat(sm.compareAndSet(VmState.STOPPED, VmState.STARTING, Cause.OPERATOR_START, "")).isTrue();
        assertThat(sm.state()).isEqualTo(VmState.STARTING);
    }
}

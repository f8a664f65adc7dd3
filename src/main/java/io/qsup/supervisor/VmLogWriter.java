package io.qsup.supervisor;

import io.qsup.vm.VmEvent;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Appends every life-cycle event of a VM to its own {@code log-dir/NAME/qemu.log}, beside the launch lines and QEMU's
 * own output that the launcher writes there, so one file tells a VM's story.
 *
 * <p>Threading: {@link #accept} only queues; each VM's lines are written in order by its own virtual thread
 * ({@code vm-log NAME}), so a slow disk never holds up supervision.
 */
final class VmLogWriter implements Consumer<VmEvent>, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VmLogWriter.class);

    private final Function<String, Path> logFile;
    private final Map<String, ExecutorService> perVm = new ConcurrentHashMap<>();

    /** @param logFile maps a VM name to its qemu.log */
    VmLogWriter(Function<String, Path> logFile) {
        this.logFile = logFile;
    }

    @Override
    public void accept(VmEvent e) {
        String line = switch (e) {
            case VmEvent.StateChange sc -> sc.from() + " -> " + sc.to() + " (" + sc.cause()
                    + (sc.detail().isEmpty() ? "" : ": " + sc.detail()) + ")";
            case VmEvent.ResponsivenessChange rc -> rc.unresponsive() ? "unresponsive: " + rc.detail() : "responsive";
            case VmEvent.StopRungReached r -> "stop ladder: " + r.rung();
            case VmEvent.GuestHangChange g -> g.guestUnresponsive() ? "guest unresponsive: " + g.detail()
                    : "guest responsive again";
            case VmEvent.Ready r -> "ready: " + r.detail();
            case VmEvent.ReadyMissed r -> "not ready: " + r.detail();
            case VmEvent.AgentChange a -> "guest agent " + a.state() + " (" + a.detail() + ")";
            case VmEvent.RestartPendingChange rp -> rp.changedKeys().isEmpty() ? "restart no longer pending"
                    : "restart pending, changed keys " + rp.changedKeys();
            default -> null;
        };
        if (line == null) {
            return;
        }
        String text = e.time() + " " + line + "\n";
        ExecutorService ex = perVm.computeIfAbsent(e.vm(),
                vm -> Executors.newSingleThreadExecutor(Thread.ofVirtual().name("vm-log " + vm).factory()));
        try {
            ex.execute(() -> append(e.vm(), text));
        } catch (RejectedExecutionException closed) {
            // closing: the daemon log has the line anyway
        }
    }

    private void append(String vm, String text) {
        Path f = logFile.apply(vm);
        try {
            Files.createDirectories(f.getParent());
            Files.writeString(f, text, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ex) {
            log.warn("VM {}: cannot append to {}: {}; check log-dir", vm, f, ex.toString());
        }
    }

    @Override
    public void close() {
        perVm.values().forEach(ExecutorService::shutdown);
        for (ExecutorService ex : perVm.values()) {
            try {
                ex.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}

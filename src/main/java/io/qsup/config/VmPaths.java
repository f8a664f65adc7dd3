package io.qsup.config;

import java.nio.file.Path;

/**
 * Where one VM's runtime files live: its run folder (QMP socket, pidfile, console socket, guest agent socket), its log folder and its
 * state folder (the per-VM copy of the UEFI variable store).
 */
public record VmPaths(
        Path dir,
        Path qmpSocket,
        Path pidFile,
        Path consoleSocket,
        Path agentSocket,
        Path logDir,
        Path qemuLog,
        Path serialLog,
        Path stateDir,
        Path efiVars) {

    static VmPaths of(Path runDir, Path logDir, Path stateDir, String vmName) {
        Path dir = runDir.resolve("vms").resolve(vmName);
        Path logs = logDir.resolve(vmName);
        Path state = stateDir.resolve("vms").resolve(vmName);
        return new VmPaths(
                dir,
                dir.resolve("qmp.sock"),
                dir.resolve("qemu.pid"),
                dir.resolve("console.sock"),
                dir.resolve("ga.sock"),
                logs,
                logs.resolve("qemu.log"),
                logs.resolve("serial.log"),
                state,
                state.resolve("efivars.fd"));
    }
}

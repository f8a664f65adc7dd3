package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * What the control commands ask of cluster mode, in plain JSON so that this package never loads the etcd client:
 * the cluster's implementation exists only when {@code cluster:} is configured. Calls may block on etcd, each within
 * its own deadline.
 */
public interface ClusterPort {

    /** This host's name in the cluster. */
    String host();

    /** Whether {@code name} is a cluster VM (defined in etcd). */
    boolean isClusterVm(String name);

    /**
     * Validates the definitions ({@code file} path to YAML text) as the local folder's are validated, and writes them
     * all in one transaction, or nothing: returns {@code applied}, {@code unchanged}.
     */
    JsonNode apply(Map<String, String> definitions) throws ControlException;

    /** Removes a cluster VM's definition; its host stops it. */
    JsonNode delete(String name) throws ControlException;

    /** Every registered host: address, capacity, used, leader, alive. */
    JsonNode hosts() throws ControlException;

    /**
     * Adds {@code host} and, for cluster VMs not running here, their status, to the local VM objects, and returns the
     * objects of cluster VMs this host does not run.
     */
    List<ObjectNode> remoteVms(List<ObjectNode> local);

    /**
     * Writes the operator's intent for a cluster VM; with {@code wait}, waits up to {@code timeout} for the VM's
     * status to show it: returns {@code name}, {@code state}, {@code host}.
     */
    JsonNode setIntent(String name, boolean started, boolean wait, Duration timeout) throws ControlException;

    /**
     * Live-migrates a running cluster VM to host {@code to}; with {@code wait}, waits for the outcome: returns
     * {@code name}, {@code from}, {@code to}, {@code state} and figures, or fails with the reason (the VM runs on at
     * its source). {@code timeout} bounds the transfer (null: the default); {@code bandwidth} in bytes per second, 0
     * for the default.
     */
    JsonNode migrate(String name, String to, boolean wait, Duration timeout, long bandwidth) throws ControlException;

    /**
     * Marks {@code host} drained, so that nothing new is placed there, and migrates every VM it runs that can move;
     * returns {@code host}, {@code drained} and one result per VM. With {@code undo}, lifts the mark and moves nothing.
     */
    JsonNode drain(String host, boolean undo, Duration timeout) throws ControlException;
}

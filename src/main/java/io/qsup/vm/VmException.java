package io.qsup.vm;

/** Root of the errors of one VM's life cycle: launch, adoption, stop. Messages name the VM and say what to do. */
public class VmException extends Exception {
    public VmException(String message) {
        super(message);
    }

    public VmException(String message, Throwable cause) {
        super(message, cause);
    }
}

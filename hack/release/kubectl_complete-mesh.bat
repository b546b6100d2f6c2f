@echo off
rem kubectl (1.26+) runs kubectl_complete-mesh from PATH to complete "kubectl mesh"; cobra's hidden __complete command does the work.
kubectl-mesh.exe __complete %*
